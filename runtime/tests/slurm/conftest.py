"""The Slurm client of the session's real Slurm (`slurm`, in the root conftest.py)."""

from __future__ import annotations

import pytest

from runtime.slurm.client import SlurmClient


@pytest.fixture
def client(slurm) -> SlurmClient:
    return SlurmClient(str(slurm.conf), timeout=30)
