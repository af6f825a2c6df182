"""The pages, for a member, a viewer, an outsider and an anonymous visitor.

Same permissions as the API: an outsider gets 404 (existence is not leaked), a viewer
sees no action buttons and gets 403 on every POST, a developer acts on their own
deployments only. Query counts do not grow with the number of deployments.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import PASSWORD, UserFactory
from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment, DeploymentLog, Status
from deployments.services import DependencySpec, DeploymentSpec, deployment_create
from deployments.tests.factories import DeploymentFactory
from hypervisor.resources import Resources
from orgs.models import Role
from orgs.tests.factories import MembershipFactory
from runtime.services import RuntimeSpec, runtime_add
from scheduler.selectors import cluster_queue
from scheduler.services import schedule_cluster
from web.selectors import QUEUE_HEAD
from web.tests.factories import (
    DependencyFactory,
    DeploymentEventFactory,
    RunningDeploymentFactory,
)

pytestmark = pytest.mark.django_db


def client_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def cluster(organization):
    return ClusterFactory(organization=organization, name="gpu-east")


@pytest.fixture
def scene(cluster, developer, admin_user):
    """The cluster full: the developer's and the admin's running deployments, one queued
    for room, one pending on the developer's."""
    mine = RunningDeploymentFactory(
        cluster=cluster, created_by=developer, name="mine-running", cpu=4000
    )
    theirs = RunningDeploymentFactory(
        cluster=cluster, created_by=admin_user, name="theirs-running", cpu=4000
    )
    queued = DeploymentFactory(cluster=cluster, created_by=developer, name="waits-for-room")
    pending = DependencyFactory(
        dependency=mine, dependent__name="waits-for-mine", dependent__created_by=developer
    ).dependent
    cluster.allocated_cpu, cluster.allocated_ram_mb = 8000, 2048
    cluster.save()
    DeploymentEventFactory(deployment=mine, reason="started: it fits in the free room")
    schedule_cluster(cluster_id=cluster.pk)  # as after any change: the queue's reasons
    return SimpleNamespace(mine=mine, theirs=theirs, queued=queued, pending=pending)


def dashboard_url(organization) -> str:
    return reverse("web:dashboard", args=[organization.pk])


def deployment_url(deployment: Deployment, suffix: str = "") -> str:
    name = f"web:deployment-{suffix}" if suffix else "web:deployment"
    return reverse(name, args=[deployment.pk])


def new_url(organization) -> str:
    return reverse("web:deployment-new", args=[organization.pk])


def page_urls(organization, deployment) -> list[str]:
    return [
        reverse("web:home"),
        dashboard_url(organization),
        reverse("web:dashboard-live", args=[organization.pk]),
        deployment_url(deployment),
        deployment_url(deployment, "live"),
        deployment_url(deployment, "logs"),
        new_url(organization),
    ]


def status_of(deployment: Deployment) -> str:
    deployment.refresh_from_db()
    return deployment.status


# --- anonymous ------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in_from_every_page(client, organization, scene):
    for url in page_urls(organization, scene.mine):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"{reverse('web:login')}?next={url}"


def test_anonymous_post_changes_nothing(client, scene):
    response = client.post(deployment_url(scene.mine, "complete"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login"))
    assert status_of(scene.mine) == Status.RUNNING


# --- sign in / sign out ---------------------------------------------------------------


def test_sign_in_is_csrf_protected_and_leads_home(developer, organization):
    client = Client(enforce_csrf_checks=True)
    credentials = {"username": developer.username, "password": PASSWORD}
    assert client.post(reverse("web:login"), credentials).status_code == 403
    page = client.get(reverse("web:login"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    response = client.post(reverse("web:login"), {**credentials, "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == reverse("web:home")
    home = client.get(reverse("web:home"))
    assert organization.name in home.content.decode()


def test_sign_in_with_a_wrong_password_says_so(client, developer):
    response = client.post(
        reverse("web:login"), {"username": developer.username, "password": "wrong"}
    )
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_failed_sign_ins_share_the_api_rate_limit(client, developer, settings):
    settings.RATELIMIT_LOGIN_USERNAME = "2/m"
    for _ in range(3):  # django-ratelimit limits once the count exceeds the rate
        client.post(reverse("web:login"), {"username": developer.username, "password": "no"})
    response = client.post(
        reverse("web:login"), {"username": developer.username, "password": PASSWORD}
    )
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many sign-in attempts" in response.content.decode()


def test_sign_out_is_a_post_and_ends_the_session(developer):
    client = client_as(developer)
    assert client.get(reverse("web:logout")).status_code == 405
    response = client.post(reverse("web:logout"))
    assert response.status_code == 302 and response["Location"] == reverse("web:login")
    assert client.get(reverse("web:home")).status_code == 302


# --- home -----------------------------------------------------------------------------


def test_home_lists_only_my_organizations_with_my_role(viewer, organization, outsider):
    other = MembershipFactory(role=Role.OWNER).organization
    body = client_as(viewer).get(reverse("web:home")).content.decode()
    assert organization.name in body and dashboard_url(organization) in body
    assert "Viewer" in body
    assert other.name not in body


# --- dashboard ------------------------------------------------------------------------


def test_dashboard_shows_capacity_counts_and_the_explained_queue(developer, organization, scene):
    response = client_as(developer).get(dashboard_url(organization))
    assert response.status_code == 200
    body = response.content.decode()
    assert "gpu-east" in body
    # Bars: CPU fully allocated (8 of 8 cores), RAM 2 of 32 GiB, as accessible meters.
    assert 'aria-valuetext="CPU: 8 of 8 cores allocated (100%)"' in body
    assert 'aria-valuetext="RAM: 2 GiB of 32 GiB allocated (6%)"' in body
    assert re.search(r'class="running-count">2<', body)
    assert re.search(r'class="waiting-count">2<', body)
    start = body.index('<table class="queue')
    queue = body[start : body.index("</table>", start)]
    rows = re.findall(r'<tr data-deployment="(\d+)">(.*?)</tr>', queue, re.S)
    assert [int(pk) for pk, _ in rows] == [scene.queued.pk, scene.pending.pk]
    assert 'data-label="Position" class="num">1<' in rows[0][1]
    assert "CPU" in rows[0][1] and "free" in rows[0][1]  # the planner's reason
    assert "Submit a deployment" in body


def test_queue_names_what_holds_the_room_and_marks_the_preempted(
    developer, organization, cluster, scene
):
    scene.queued.preemption_count = 2
    scene.queued.save()
    body = client_as(developer).get(dashboard_url(organization)).content.decode()
    row = body[body.index(f'data-deployment="{scene.queued.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Held by" in row and "mine-running" in row and "theirs-running" in row
    assert "preempted 2 times" in row
    pending = body[body.index(f'data-deployment="{scene.pending.pk}"') :]
    pending = pending[: pending.index("</tr>")]
    assert "Held by" not in pending and "waiting for deployment" in pending
    page = client_as(developer).get(deployment_url(scene.queued)).content.decode()
    assert "Held by" in page and "preempted" in page


def test_viewer_sees_the_dashboard_without_a_submit_button(viewer, organization, scene):
    body = client_as(viewer).get(dashboard_url(organization)).content.decode()
    assert "waits-for-room" in body
    assert new_url(organization) not in body


def test_outsider_gets_404_everywhere(outsider, organization, scene):
    client = client_as(outsider)
    for url in page_urls(organization, scene.mine)[1:]:
        assert client.get(url).status_code == 404, url
    for action in ("complete", "fail", "cancel"):
        assert client.post(deployment_url(scene.mine, action)).status_code == 404
    assert client.post(new_url(organization), {"name": "x"}).status_code == 404
    assert status_of(scene.mine) == Status.RUNNING


def test_live_partials_render_without_the_page_around_them(developer, organization, scene):
    client = client_as(developer)
    dashboard = client.get(reverse("web:dashboard-live", args=[organization.pk]))
    assert dashboard.status_code == 200 and "<html" not in dashboard.content.decode()
    assert "waits-for-room" in dashboard.content.decode()
    assert "no-cache" in dashboard["Cache-Control"]
    page = client.get(deployment_url(scene.mine, "live"))
    assert page.status_code == 200 and "<html" not in page.content.decode()
    assert "Timeline" in page.content.decode()


# --- deployment page ------------------------------------------------------------------


def test_deployment_page_shows_fields_dependencies_dependents_and_timeline(developer, scene):
    body = client_as(developer).get(deployment_url(scene.mine)).content.decode()
    assert scene.mine.image in body
    assert "4 CPU · 1 GiB · 0 GPU" in body
    # Waiting on it: the pending deployment, with its status and condition.
    dependents = body[body.index('id="dependents-title"') :]
    assert "waits-for-mine" in dependents and "status-pending" in dependents
    assert "needs it succeeded" in dependents
    assert "started: it fits in the free room" in body and "by the scheduler" in body

    pending = client_as(developer).get(deployment_url(scene.pending)).content.decode()
    depends_on = pending[pending.index('id="deps-title"') : pending.index('id="dependents-title"')]
    assert "mine-running" in depends_on and "status-running" in depends_on
    assert "must have succeeded" in depends_on
    assert "Waiting for its dependencies" in pending and "Position" not in pending
    queued = client_as(developer).get(deployment_url(scene.queued)).content.decode()
    assert "in the queue of" in queued


def buttons(body: str) -> set[str]:
    """Complete acts at once; Cancel and Fail lead to a confirmation page first."""
    posts = re.findall(r'<button type="submit" class="button[^"]*">(\w+)</button>', body)
    confirms = re.findall(r'<a class="button[^"]*" href="/deployments/\d+/\w+/">(\w+)</a>', body)
    return {*posts, *confirms}


@pytest.mark.parametrize(
    ("role", "own", "expected"),
    [
        (Role.OWNER, False, {"Complete", "Fail", "Cancel"}),
        (Role.ADMIN, False, {"Complete", "Fail", "Cancel"}),
        (Role.DEVELOPER, True, {"Complete", "Fail", "Cancel"}),
        (Role.DEVELOPER, False, set()),
        (Role.VIEWER, False, set()),
    ],
)
def test_buttons_follow_the_role_rules(organization, cluster, role, own, expected):
    user = MembershipFactory(organization=organization, role=role).user
    creator = user if own else UserFactory()
    running = RunningDeploymentFactory(cluster=cluster, created_by=creator)
    body = client_as(user).get(deployment_url(running)).content.decode()
    assert buttons(body) == expected


def test_buttons_follow_the_status(owner, scene):
    body = client_as(owner).get(deployment_url(scene.queued)).content.decode()
    assert buttons(body) == {"Cancel"}


def test_viewer_gets_403_on_every_action(viewer, scene):
    client = client_as(viewer)
    for action in ("complete", "fail", "cancel"):
        assert client.post(deployment_url(scene.mine, action)).status_code == 403
    assert status_of(scene.mine) == Status.RUNNING


def test_developer_acts_on_their_own_deployments_only(developer, scene):
    client = client_as(developer)
    assert client.post(deployment_url(scene.theirs, "complete")).status_code == 403
    assert status_of(scene.theirs) == Status.RUNNING
    response = client.post(deployment_url(scene.mine, "complete"))
    assert response.status_code == 302 and response["Location"] == deployment_url(scene.mine)
    assert status_of(scene.mine) == Status.COMPLETED
    event = scene.mine.events.order_by("-at", "-id").first()
    assert event.actor == developer and event.to_status == Status.COMPLETED


def test_an_action_the_status_forbids_is_explained_not_applied(admin_user, scene):
    client = client_as(admin_user)
    response = client.post(deployment_url(scene.queued, "complete"), follow=True)
    assert "Cannot complete a deployment that is queued" in response.content.decode()
    assert status_of(scene.queued) == Status.QUEUED


def test_cancel_and_fail_ask_first(owner, scene):
    client = client_as(owner)
    for action in ("cancel", "fail"):
        response = client.get(deployment_url(scene.mine, action))
        assert response.status_code == 200
        body = response.content.decode()
        assert f"{action.capitalize()} mine-running" in body and "cannot be undone" in body
        assert 'action=""' not in body and 'method="post"' in body
    assert status_of(scene.mine) == Status.RUNNING  # asking changed nothing
    assert client.post(deployment_url(scene.mine, "fail")).status_code == 302
    assert status_of(scene.mine) == Status.FAILED


def test_confirmation_follows_the_role_rules(viewer, outsider, scene):
    assert client_as(viewer).get(deployment_url(scene.mine, "cancel")).status_code == 403
    assert client_as(outsider).get(deployment_url(scene.mine, "cancel")).status_code == 404


# --- the submission form --------------------------------------------------------------


def valid_form(cluster, **overrides) -> dict:
    return {
        "cluster": cluster.pk,
        "name": "train",
        "image": "registry.example.com:5000/team/trainer:1.4",
        "cpu": "1.5",
        "ram_mb": "2048",
        "gpu": "0",
        "priority": "10",
        "preemptible": "on",
        "depends_on": "",
        **overrides,
    }


def field_block(body: str, name: str) -> str:
    """The HTML of one field's wrapper: its label, input, errors and help."""
    start = body.rindex('<div class="field', 0, body.index(f'name="{name}"'))
    following = [
        i
        for i in (
            body.find('<div class="field', start + 1),
            body.find("</fieldset>", start),
            body.find('<div class="form-actions"', start),
        )
        if i != -1
    ]
    return body[start : min(following)]


def test_viewer_may_not_open_or_post_the_form(viewer, organization, cluster):
    client = client_as(viewer)
    assert client.get(new_url(organization)).status_code == 403
    assert client.post(new_url(organization), valid_form(cluster)).status_code == 403
    assert not Deployment.objects.exists()


def test_form_offers_only_the_organizations_clusters(developer, organization, cluster):
    foreign = ClusterFactory(name="not-ours")
    body = client_as(developer).get(new_url(organization)).content.decode()
    assert "gpu-east" in body and "not-ours" not in body
    response = client_as(developer).post(new_url(organization), valid_form(foreign))
    assert response.status_code == 400
    assert "errorlist" in field_block(response.content.decode(), "cluster")


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"image": "Not An Image"}, "image", "image reference"),
        ({"cpu": "99"}, "cpu", "Exceeds the cluster&#x27;s capacity in cpu"),
        ({"gpu": "5"}, "gpu", "Exceeds the cluster&#x27;s capacity in gpu"),
        ({"cpu": "0.0001"}, "cpu", "decimal place"),
        ({"priority": "1000001"}, "priority", "less than or equal to 1000000"),
        ({"name": ""}, "name", "This field is required"),
        ({"depends_on": "12, abc"}, "depends_on", "is not a deployment id"),
        ({"depends_on": "12:sometime"}, "depends_on", "is not a condition"),
        # Issue 16, finding 13: Django's fields read these as 1 (int() and Decimal() do).
        ({"cpu": "\u0661"}, "cpu", "Enter a number"),
        ({"ram_mb": "\uff11"}, "ram_mb", "Enter a whole number"),
        ({"priority": "\u0967"}, "priority", "Enter a whole number"),
        ({"name": "evil\u202egnp.exe"}, "name", "control or formatting characters"),
    ],
)
def test_form_errors_appear_next_to_their_field(
    developer, organization, cluster, overrides, field, message
):
    response = client_as(developer).post(new_url(organization), valid_form(cluster, **overrides))
    assert response.status_code == 400
    body = response.content.decode()
    block = field_block(body, field)
    assert message in block, block
    assert 'aria-invalid="true"' in block
    assert f'id="id_{field}_error"' in block  # what aria-describedby points at
    assert not Deployment.objects.exists()


def test_every_error_of_the_form_shows_at_once(developer, organization, cluster):
    """A missing name, a bad image and a request beyond the capacity: one round."""
    form = valid_form(cluster, name="", image="Not An Image", cpu="9999", gpu="99")
    response = client_as(developer).post(new_url(organization), form)
    assert response.status_code == 400
    body = response.content.decode()
    assert "This field is required." in field_block(body, "name")
    assert "image" in field_block(body, "image").lower()
    assert "it could never run" in field_block(body, "cpu")
    assert "it could never run" in field_block(body, "gpu")
    summary = body[body.index('class="error-summary"') :]
    assert "Please correct 4 problems" in summary
    assert 'href="#id_name"' in summary and 'href="#id_image"' in summary


def test_the_service_reports_every_problem_of_a_spec_at_once(developer, cluster):
    spec = DeploymentSpec(
        name="x",
        image="Not An Image",
        resources=Resources(10**6, 1, 0),
        depends_on=(DependencySpec(1), DependencySpec(1)),
    )
    with pytest.raises(ValidationError) as caught:
        deployment_create(actor=developer, cluster=cluster, spec=spec)
    assert set(caught.value.message_dict) == {"image", "resources", "depends_on"}


def test_foreign_dependency_is_refused_like_a_missing_one(developer, organization, cluster):
    foreign = DeploymentFactory()
    response = client_as(developer).post(
        new_url(organization), valid_form(cluster, depends_on=str(foreign.pk))
    )
    block = field_block(response.content.decode(), "depends_on")
    assert f"Deployment {foreign.pk} does not exist." in block


@pytest.mark.django_db(transaction=True)
def test_submitting_creates_it_through_the_service_and_the_scheduler_starts_it(
    developer, organization, cluster
):
    earlier = RunningDeploymentFactory(cluster=cluster, cpu=0, ram_mb=0)
    response = client_as(developer).post(
        new_url(organization), valid_form(cluster, depends_on=f"{earlier.pk}:finished")
    )
    deployment = Deployment.objects.get(name="train")
    assert response.status_code == 302 and response["Location"] == deployment_url(deployment)
    assert deployment.created_by == developer and deployment.cpu == 1500
    assert deployment.status == Status.PENDING  # waits for `earlier` to finish
    client_as(developer).post(deployment_url(earlier, "cancel"))  # not theirs: refused
    assert status_of(earlier) == Status.RUNNING
    client_as(MembershipFactory(organization=organization, role=Role.ADMIN).user).post(
        deployment_url(earlier, "cancel")
    )
    assert status_of(deployment) == Status.RUNNING  # resolved, queued, then started


@pytest.mark.django_db(transaction=True)
def test_completing_frees_room_and_the_queued_one_starts(developer, organization, scene):
    client = client_as(developer)
    client.post(deployment_url(scene.mine, "complete"))
    assert status_of(scene.queued) == Status.RUNNING
    assert status_of(scene.pending) == Status.RUNNING  # its dependency succeeded
    body = client.get(dashboard_url(organization)).content.decode()
    assert "Nothing waits." in body


# --- query counts ---------------------------------------------------------------------


def queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


def add_deployments(cluster, developer, count: int) -> None:
    for _ in range(count):
        RunningDeploymentFactory(cluster=cluster, created_by=UserFactory(), cpu=0, ram_mb=0)
        DeploymentFactory(cluster=cluster, created_by=developer, cpu=9000)  # never fits
        DependencyFactory(dependency__cluster=cluster)


def test_dashboard_queries_do_not_grow_with_deployments(developer, organization, cluster):
    client = client_as(developer)
    add_deployments(cluster, developer, 1)
    live_url = reverse("web:dashboard-live", args=[organization.pk])
    few, few_live = queries(client, dashboard_url(organization)), queries(client, live_url)
    add_deployments(cluster, developer, 10)
    # At most: with one deployment of each kind the queue's head also reads the pending
    # ones (and their links); with many, the queued ones fill the head.
    assert queries(client, dashboard_url(organization)) <= few
    # The live fragment likewise (that it never slides the session is tested in
    # test_setup_pages).
    assert queries(client, live_url) <= few_live
    # Each cluster costs at most what the head of its queue costs (a fixed few queries),
    # whatever it holds.
    other = ClusterFactory(organization=organization)
    add_deployments(other, developer, 3)
    with CaptureQueriesContext(connection) as queue:
        cluster_queue(cluster=other, limit=QUEUE_HEAD)
    assert 0 < len(queue.captured_queries) <= 5
    assert queries(client, dashboard_url(organization)) <= few + len(queue.captured_queries)


def test_deployment_page_queries_do_not_grow_with_history(developer, cluster):
    client = client_as(developer)

    def deployment_with(count: int) -> Deployment:
        """`count` dependencies, dependents and events, each by a different user."""
        dependencies = DeploymentFactory.create_batch(count, cluster=cluster)
        deployment = DeploymentFactory(cluster=cluster, created_by=developer)
        for dependency in dependencies:
            DependencyFactory(dependency=dependency, dependent=deployment)
            DependencyFactory(dependency=deployment, dependent__created_by=UserFactory())
            DeploymentEventFactory(deployment=deployment, actor=UserFactory())
        return deployment

    one = deployment_with(1)
    few, few_live = (
        queries(client, deployment_url(one)),
        queries(client, deployment_url(one, "live")),
    )
    many = deployment_with(10)
    assert queries(client, deployment_url(many)) == few
    assert queries(client, deployment_url(many, "live")) == few_live


def test_home_queries_do_not_grow_with_organizations(developer):
    client = client_as(developer)
    few = queries(client, reverse("web:home"))
    for _ in range(5):
        MembershipFactory(user=developer)
    assert queries(client, reverse("web:home")) == few


# --- output ---------------------------------------------------------------------------


def test_a_manual_deployment_page_says_there_is_no_output(developer, scene):
    page = client_as(developer).get(deployment_url(scene.mine))
    assert b"This cluster is manual" in page.content


def test_the_page_shows_the_workloads_lines_and_refreshes_them(developer, cluster, outsider):
    runtime = runtime_add(
        spec=RuntimeSpec(
            name="dk",
            kind="docker",
            endpoint="unix:///nonexistent.sock",
            options={},
            credentials={},
        )
    )
    cluster.runtime = runtime
    cluster.save()
    done = DeploymentFactory(cluster=cluster, created_by=developer, status=Status.COMPLETED)
    DeploymentLog.objects.create(
        deployment=done, lines=["epoch 1 <loss=0.5>", "epoch 2"], source="docker"
    )
    page = client_as(developer).get(deployment_url(done))
    assert b"epoch 1 &lt;loss=0.5&gt;\nepoch 2" in page.content  # escaped, in order
    assert f'data-live-url="{deployment_url(done, "logs")}"'.encode() in page.content
    partial = client_as(developer).get(deployment_url(done, "logs"))
    assert partial.status_code == 200 and b"epoch 2" in partial.content
    assert b"from docker" in partial.content
    assert client_as(outsider).get(deployment_url(done, "logs")).status_code == 404
