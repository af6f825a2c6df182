"""A team sets itself up in a real browser, from an empty database, finding its way by
links, buttons and labels as a person does (Debian's headless Chromium, Playwright).

Alice signs up, creates an organization, copies and rotates its invite code, adds and
edits a cluster; Bob signs up and joins with the code; Alice makes him an admin, then
removes him. On the way: every page at 1280 px and 390 px without sideways scrolling,
the error pages, a form kept across a sign-out, the live pages' offline notice, the
confirmation before a cancel, every error of the submit form at once, and Swagger UI
still writing after signing in within it.

No ORM call while the browser runs (see `test_browser.py`): the pages are the oracle.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from io import StringIO
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from playwright.sync_api import Browser, Page, expect

from deployments.models import Deployment, Status
from orgs.models import Organization
from web.management.commands.demo import ORGANIZATION
from web.tests.browsing import WIDTHS, fits, launch_chromium, sign_in, url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-team-password-1"


@pytest.fixture
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


def sign_up(page: Page, base_url: str, username: str) -> None:
    page.goto(base_url)  # signed out: the sign-in page, which links to sign-up
    expect(page.get_by_text("sign in to continue")).to_be_visible()
    page.get_by_role("link", name="Sign up").first.click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email (optional)").fill(f"{username}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Your organizations")).to_be_visible()
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()


def shoot(page: Page, screenshots, name: str) -> None:
    """The page at both widths, each without sideways scrolling."""
    for width, viewport in WIDTHS.items():
        page.set_viewport_size(viewport)
        assert fits(page), f"{page.url} scrolls sideways at {viewport['width']} px"
        page.screenshot(path=str(screenshots / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size(WIDTHS["wide"])


def test_a_team_sets_itself_up(live_server, browser, screenshots):
    alice = browser.new_context(viewport=WIDTHS["wide"], permissions=[])
    page = alice.new_page()
    page.goto(live_server.url)
    shoot(page, screenshots, "signin")
    sign_up(page, live_server.url, "alice")

    page.get_by_role("link", name="Create an organization").first.click()
    page.get_by_label("Name").fill("ml-research")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="ml-research: team and clusters")).to_be_visible()

    first_code = page.get_by_role("textbox", name="Invite code").input_value()
    assert len(first_code) >= 16
    page.get_by_role("button", name="Copy").click()
    expect(page.locator(".copy-status")).not_to_be_empty()
    page.get_by_role("button", name="Rotate the code").click()
    expect(page.get_by_text("A new invite code is ready")).to_be_visible()
    code = page.get_by_role("textbox", name="Invite code").input_value()
    assert code != first_code

    page.get_by_role("link", name="Add a cluster").click()
    page.get_by_label("Name").fill("gpu-east")
    page.get_by_label("CPU (cores)").fill("-1")  # wrong on purpose: every error at once
    page.get_by_label("RAM (MiB)").fill("-5")
    page.get_by_role("button", name="Add the cluster").click()
    expect(page.get_by_text("Please correct 2 problems")).to_be_visible()
    shoot(page, screenshots, "cluster-form")
    page.get_by_label("CPU (cores)").fill("16")
    page.get_by_label("RAM (MiB)").fill("65536")
    page.get_by_label("GPUs").fill("4")
    page.get_by_label("Scheduling policy").select_option("fifo")
    page.get_by_label("Starvation protection (seconds)").fill("900")
    page.get_by_role("button", name="Add the cluster").click()
    row = page.locator('tr[data-cluster="gpu-east"]')
    expect(row).to_contain_text("16 CPU")
    expect(row).to_contain_text("fifo")
    page.get_by_role("link", name="Edit gpu-east").click()
    expect(page.get_by_label("Name")).to_have_value("gpu-east")
    page.get_by_label("CPU (cores)").fill("32")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator('tr[data-cluster="gpu-east"]')).to_contain_text("32 CPU")

    bob = browser.new_context(viewport=WIDTHS["narrow"]).new_page()
    sign_up(bob, live_server.url, "bob")
    bob.get_by_role("link", name="Join with an invite code").click()
    bob.get_by_label("Invite code").fill(first_code)  # the old code no longer works
    bob.get_by_role("button", name="Join").click()
    expect(bob.get_by_text("Unknown invite code.").first).to_be_visible()
    bob.get_by_label("Invite code").fill(code)
    bob.get_by_role("button", name="Join").click()
    expect(bob.get_by_text("You are a member of ml-research, as developer.")).to_be_visible()
    expect(bob.get_by_role("heading", name="ml-research", level=1)).to_be_visible()
    assert fits(bob)

    page.reload()
    page.get_by_label("Role of bob", exact=True).select_option("admin")
    page.get_by_role("button", name="Change the role of bob").click()
    expect(page.get_by_text("bob is now admin.")).to_be_visible()
    expect(page.locator('tr[data-member="bob"]')).to_contain_text("Admin")
    shoot(page, screenshots, "team")

    page.get_by_role("link", name="Remove bob").click()
    expect(page.get_by_role("heading", name="Remove bob from ml-research?")).to_be_visible()
    page.get_by_role("button", name="Remove bob").click()
    expect(page.get_by_text("Removed bob.")).to_be_visible()
    expect(page.locator('tr[data-member="bob"]')).to_have_count(0)
    # The last owner stays, whatever she tries.
    page.get_by_label("Role of alice", exact=True).select_option("viewer")
    page.get_by_role("button", name="Change the role of alice").click()
    expect(page.get_by_text("An organization must keep at least one owner.")).to_be_visible()

    # Bob is out: his open dashboard notices on its next refresh and reloads into the
    # site's own 404 page.
    expect(bob.get_by_role("heading", name="Page not found")).to_be_visible(timeout=15_000)
    bob.get_by_role("link", name="Go to your organizations").click()
    expect(bob.get_by_role("heading", name="Your organizations")).to_be_visible()
    alice.close()


def test_signed_out_while_typing_keeps_the_form(live_server, browser):
    context = browser.new_context(viewport=WIDTHS["wide"])
    page = context.new_page()
    sign_up(page, live_server.url, "carol")
    page.get_by_role("link", name="Create an organization").first.click()
    page.get_by_label("Name").fill("typed-before-the-session-ended")
    context.clear_cookies(name="sessionid")  # the session ends while she types
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_text("You were signed out, so nothing was saved.")).to_be_visible()
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Name")).to_have_value("typed-before-the-session-ended")
    page.get_by_role("button", name="Create").click()
    expect(
        page.get_by_role("heading", name="typed-before-the-session-ended: team and clusters")
    ).to_be_visible()
    context.close()


@pytest.fixture
def demo() -> SimpleNamespace:
    """The demo's data, read before the browser starts (see `test_browser.py`)."""
    call_command("demo", force=True, stdout=StringIO())
    organization = Organization.objects.get(name=ORGANIZATION)
    deployments = Deployment.objects.filter(cluster__organization=organization)
    return SimpleNamespace(
        organization_id=organization.pk,
        queued_id=deployments.filter(status=Status.QUEUED).first().pk,
        pending_id=deployments.filter(status=Status.PENDING).first().pk,
    )


def test_live_pages_say_when_the_server_is_gone(live_server, demo, browser):
    page = browser.new_page()
    sign_in(page, live_server.url, "demo-viewer")
    page.goto(url(live_server, "web:dashboard", demo.organization_id))
    status = page.locator(".live-status")
    expect(status).to_contain_text("last updated")
    page.route(re.compile(r".*/live/$"), lambda route: route.abort("connectionrefused"))
    expect(status).to_contain_text("Offline: the server cannot be reached", timeout=10_000)
    page.unroute(re.compile(r".*/live/$"))
    expect(status).to_contain_text("last updated", timeout=10_000)
    page.close()


def test_cancel_asks_first_and_pending_says_what_it_waits_for(live_server, demo, browser):
    page = browser.new_page()
    sign_in(page, live_server.url, "demo-admin")
    page.goto(url(live_server, "web:deployment", demo.pending_id))
    expect(page.get_by_text("Waiting for its dependencies")).to_be_visible()
    expect(page.get_by_text("Position")).to_have_count(0)

    page.goto(url(live_server, "web:deployment", demo.queued_id))
    expect(page.locator(".status-line")).to_contain_text("needs")
    expect(page.locator(".holders")).to_contain_text("Held by")
    page.get_by_role("link", name="Cancel", exact=True).click()
    expect(page.get_by_text("This cannot be undone.")).to_be_visible()
    page.get_by_role("link", name="No, keep it as it is").click()
    expect(page.locator(".status-line .status")).to_have_text("queued")
    page.get_by_role("link", name="Cancel", exact=True).click()
    page.get_by_role("button", name="Cancel the deployment").click()
    expect(page.locator(".status-line .status")).to_have_text("cancelled")
    expect(page.get_by_text("by demo-admin by demo-admin")).to_have_count(0)
    page.close()


def test_submit_form_shows_every_error_at_once(live_server, demo, browser):
    page = browser.new_page()
    sign_in(page, live_server.url, "demo-developer")
    page.goto(url(live_server, "web:deployment-new", demo.organization_id))
    page.get_by_label("Image").fill("Not An Image!")
    page.get_by_label("CPU (cores)").fill("9999")
    page.get_by_label("RAM (MiB)").fill("1")
    page.get_by_role("button", name="Submit", exact=True).click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("Name")
    expect(summary).to_contain_text("Image")
    expect(summary).to_contain_text("could never run")
    page.close()


def test_swagger_keeps_writing_after_signing_in_within_it(live_server, demo, browser):
    """Try it out: log in with the example, then create an organization with its example."""
    page = browser.new_page(viewport=WIDTHS["wide"])
    page.goto(f"{live_server.url}/api/docs")

    def try_out(method: str, path: str) -> None:
        block = (
            page.locator(".opblock")
            .filter(has=page.locator(".opblock-summary-path", has_text=re.compile(f"^{path}$")))
            .filter(has=page.locator(".opblock-summary-method", has_text=method))
        )
        block.locator(".opblock-summary").first.click()
        block.get_by_role("button", name="Try it out").click()
        block.get_by_role("button", name="Execute").click()
        expect(
            block.locator(".live-responses-table tbody .response-col_status").first
        ).to_have_text(re.compile(r"20[01]"), timeout=10_000)

    try_out("POST", "/api/v1/auth/login/")
    try_out("POST", "/api/v1/organizations/")
    page.close()


@pytest.fixture
def operator(demo) -> SimpleNamespace:
    get_user_model().objects.create_superuser("operator", password=PASSWORD)
    return demo


def test_admin_lists_fit_1280_px(live_server, operator, browser, screenshots):
    page = browser.new_page(viewport=WIDTHS["wide"])
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    for model in ("clusters/cluster", "deployments/deployment"):
        page.goto(f"{live_server.url}/admin/{model}/")
        expect(page.locator("#result_list")).to_be_visible()
        name = model.split("/")[1]
        page.screenshot(path=str(screenshots / f"admin-{name}s.png"), full_page=True)
        # Every column on screen: the results table is no wider than its scroll box.
        assert page.evaluate(
            "(() => { const box = document.querySelector('.results');"
            " return box.scrollWidth <= box.clientWidth; })()"
        ), model
        assert fits(page), model
    page.close()
