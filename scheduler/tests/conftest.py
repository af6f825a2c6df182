"""Fixtures the scheduler's tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.dispatch import receiver

from scheduler.services import PassResult, pass_finished


@pytest.fixture
def passes() -> Iterator[list[PassResult]]:
    """Every pass (and shortcut decision) that finishes during the test, in order."""
    seen: list[PassResult] = []

    @receiver(pass_finished, weak=False)
    def record(sender, result: PassResult, **kwargs) -> None:
        seen.append(result)

    yield seen
    pass_finished.disconnect(record)
