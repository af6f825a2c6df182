"""Fixtures of the pages' tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from web.tests.browsing import DOCS_IMG


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """docs/img when `HV_SCREENSHOTS=1` (`make screenshots`), else a temporary directory."""
    if os.environ.get("HV_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        return DOCS_IMG
    return tmp_path
