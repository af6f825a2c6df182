"""The pages in a real browser: Debian's headless Chromium, driven by Playwright, against
pytest-django's live server (the app in a thread, passes run in-process after commit).

The story: sign in, open the dashboard, submit a deployment that has to wait, watch it
appear in the queue of a dashboard left open in another tab, complete a running one
with the keyboard, and watch the queued one start there, without a reload. The team's
set-up from an empty database is in `test_browser_setup.py`.

Screenshots go to a temporary directory, so that `make test` leaves the work tree as it
found it; `make screenshots` runs these tests with `HV_SCREENSHOTS=1`, which writes them
to docs/img for the README instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, expect

from deployments.models import Deployment, Status
from orgs.models import Organization
from web.management.commands.demo import ORGANIZATION
from web.tests.browsing import fits, launch_chromium, sign_in, url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

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
    yield from launch_chromium()


# Sequences reset: the screenshots show the same small ids whatever ran before.
@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_submit_queue_complete_and_watch_it_start(live_server, demo, browser, screenshots):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, live_server.url, "demo-admin")
    page.get_by_role("link", name=ORGANIZATION, exact=True).click()
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

    watcher.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)
    page.goto(url(live_server, "web:deployment", demo.preempted_id))
    expect(page.get_by_text("preempted by deployment")).to_be_visible()
    page.screenshot(path=str(screenshots / "deployment.png"), full_page=True)
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
        assert fits(page), target  # readable at 390 px
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


@pytest.mark.parametrize("width", [390, 1280])
def test_find_a_deployment_in_the_list_by_keyboard(live_server, demo, browser, width):
    """From the dashboard's link to the list; filter by labels and the keyboard only; sort
    (by a column header, or the form on a phone); no sideways scrolling at either width."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    sign_in(page, live_server.url, "demo-developer")
    page.goto(url(live_server, "web:dashboard", demo.organization_id))
    page.get_by_role("link", name="All deployments", exact=True).click()
    expect(page.get_by_role("heading", name="Deployments", level=1)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    page.get_by_label("Search").focus()
    page.keyboard.type("orders")
    page.get_by_label("running").focus()
    page.keyboard.press("Space")
    page.get_by_label("Search").press("Enter")
    rows = page.locator("table.deployments tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("etl-orders")
    expect(page.get_by_label("Search")).to_have_value("orders")

    page.get_by_role("link", name="Clear filters").click()
    if width > 640:  # a column header sorts
        page.get_by_role("link", name="Priority", exact=True).click()
    else:  # the headers make way for stacked cards: the form's "Sort by" sorts
        page.get_by_label("Sort by").select_option(label="Priority, lowest first")
        page.get_by_role("button", name="Apply filters").focus()
        page.keyboard.press("Enter")
    expect(page.locator('th[aria-sort="ascending"]')).to_contain_text("Priority")
    priorities = [int(text) for text in page.locator('td[data-label="Priority"]').all_inner_texts()]
    assert priorities == sorted(priorities) and len(priorities) > 2
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()


def test_create_use_and_revoke_an_api_token(live_server, demo, browser):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in(page, live_server.url, "demo-developer")
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Name").press("Enter")
    secret = page.get_by_label("Your new token").input_value()
    assert secret.startswith("hv_")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    me = f"{live_server.url}/api/v1/auth/me"
    # A fresh request context: no session cookie, only the token.
    api = page.context.request
    bearer = {"Authorization": f"Bearer {secret}", "Cookie": ""}
    assert api.get(me, headers=bearer).status == 200

    page.goto(url(live_server, "web:tokens"))  # the secret is gone once shown
    expect(page.get_by_label("Your new token")).to_have_count(0)
    page.get_by_role("button", name="Revoke laptop").click()
    expect(page.get_by_text("Token revoked")).to_be_visible()
    assert api.get(me, headers=bearer).status == 401
    page.close()
