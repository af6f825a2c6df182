"""The pages in a real browser: Debian's headless Chromium, driven by Playwright, against
pytest-django's live server (the app in a thread, passes run in-process after commit).

The story: sign in, open the dashboard, submit a deployment that has to wait, watch it
appear in the queue of a dashboard left open in another tab, complete a running one
with the keyboard, and watch the queued one start there, without a reload. Along the
way the run saves docs/img/dashboard.png and docs/img/deployment.png for the README.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from playwright.sync_api import Browser, Page, expect, sync_playwright

from deployments.models import Deployment, Status
from orgs.models import Organization
from web.management.commands.demo import ORGANIZATION, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "img"
WAIT_MS = 15_000  # the live parts refresh every 3 s


@pytest.fixture
def demo() -> SimpleNamespace:
    """The demo organization, and the ids the story needs.

    Read before the browser starts: Playwright's sync API keeps an asyncio loop on this
    thread, and an ORM call made while it runs would open a second, leaked connection
    (Django keys connections by async context). The test bodies only drive the browser.
    """
    call_command("demo", force=True, stdout=StringIO())
    organization = Organization.objects.get(name=ORGANIZATION)
    deployments = Deployment.objects.filter(cluster__organization=organization)
    return SimpleNamespace(
        organization_id=organization.pk,
        cpu_west_id=organization.clusters.get(name="cpu-west").pk,  # 7.5 of 8 cores taken
        etl_orders_id=deployments.get(name="etl-orders").pk,  # 4 cores, running
        preempted_id=deployments.get(preemption_count__gt=0).pk,
        running_id=deployments.filter(status=Status.RUNNING).first().pk,
    )


@pytest.fixture
def browser(demo) -> Iterator[Browser]:
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


def sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}{reverse('web:login')}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your organizations")).to_be_visible()


def url(live_server, name: str, *args) -> str:
    return f"{live_server.url}{reverse(name, args=args)}"


# Sequences reset: the screenshots show the same small ids whatever ran before.
@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_submit_queue_complete_and_watch_it_start(live_server, demo, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, live_server.url, "demo-admin")
    page.get_by_role("link", name=ORGANIZATION).click()
    expect(page.get_by_role("heading", name=ORGANIZATION, level=1)).to_be_visible()

    # A second tab keeps the dashboard open; a reload would lose this marker.
    watcher = context.new_page()
    watcher.goto(page.url)
    watcher.evaluate("window.notReloaded = true")
    queue = watcher.locator(f"#cluster-{demo.cpu_west_id} table.queue")
    running = watcher.locator(f"#cluster-{demo.cpu_west_id} table.running")

    page.get_by_role("link", name="Submit a deployment", exact=True).click()
    page.get_by_label("Cluster").select_option(str(demo.cpu_west_id))
    page.get_by_label("Name").fill("feature-store-sync")
    page.get_by_label("Image").fill("registry.example.com/demo/feature-store:2.1")
    page.get_by_label("CPU (cores)").fill("1")
    page.get_by_label("RAM (MiB)").fill("2048")
    # Priority 0: nothing running there is below it, so it waits (no preemption).
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page.locator(".status-line .status")).to_have_text("queued")
    expect(page.get_by_text("in the queue of")).to_be_visible()
    submitted_id = int(re.fullmatch(r".*/deployments/(\d+)/", page.url)[1])

    row = queue.locator(f'tr[data-deployment="{submitted_id}"]')
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row.locator('[data-label="Why it waits"]')).to_contain_text("CPU")

    # Complete etl-orders (4 cores) by keyboard: focus the button, press Enter.
    page.goto(url(live_server, "web:deployment", demo.etl_orders_id))
    page.get_by_role("button", name="Complete").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".status-line .status")).to_have_text("completed")

    started = running.locator(f'tr[data-deployment="{submitted_id}"]')
    expect(started).to_be_visible(timeout=WAIT_MS)
    expect(queue.locator(f'tr[data-deployment="{submitted_id}"]')).to_have_count(0)
    assert watcher.evaluate("window.notReloaded") is True

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    watcher.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    page.goto(url(live_server, "web:deployment", demo.preempted_id))
    expect(page.get_by_text("preempted by deployment")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "deployment.png"), full_page=True)
    context.close()


def test_keyboard_and_narrow_screens(live_server, demo, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    sign_in(page, live_server.url, "demo-developer")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for target in (
        url(live_server, "web:home"),
        url(live_server, "web:dashboard", demo.organization_id),
        url(live_server, "web:deployment", demo.preempted_id),
        url(live_server, "web:deployment-new", demo.organization_id),
    ):
        page.goto(target)
        # Readable at 390 px: nothing makes the page scroll sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, target
    context.close()


def test_viewer_sees_no_buttons(live_server, demo, browser):
    page = browser.new_page()
    sign_in(page, live_server.url, "demo-viewer")
    page.goto(url(live_server, "web:deployment", demo.running_id))
    expect(page.locator(".status-line .status")).to_have_text("running")
    expect(page.get_by_role("button", name="Complete")).to_have_count(0)
    page.goto(url(live_server, "web:dashboard", demo.organization_id))
    expect(page.get_by_role("link", name="Submit a deployment", exact=True)).to_have_count(0)
    page.close()
