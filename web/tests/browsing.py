"""What the browser tests share: Debian's Chromium, signing in as a person does, and where
screenshots go (a temporary directory, or docs/img under `make screenshots`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from playwright.sync_api import Browser, Page, expect, sync_playwright

from web.management.commands.demo import PASSWORD

DOCS_IMG = Path(settings.BASE_DIR) / "docs" / "img"
WIDTHS = {"wide": {"width": 1280, "height": 900}, "narrow": {"width": 390, "height": 844}}


def launch_chromium() -> Iterator[Browser]:
    # The browser the Makefile checks for (`command -v chromium`): the first on PATH.
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not on PATH: run `make browser` (apt-get install chromium).")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


def sign_in(page: Page, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}{reverse('web:login')}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your organizations")).to_be_visible()


def url(live_server, name: str, *args) -> str:
    return f"{live_server.url}{reverse(name, args=args)}"


def fits(page: Page) -> bool:
    """Nothing makes the page, or a table's scroll box, scroll sideways."""
    return page.evaluate(
        """() => document.documentElement.scrollWidth <= window.innerWidth &&
           [...document.querySelectorAll('.table-scroll')].every(
             (box) => box.scrollWidth <= box.clientWidth)"""
    )
