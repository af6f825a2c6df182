"""The team's set-up pages, the error pages and the session, without a browser.

The same three-user scheme as the API's tests: what a role may do, a lesser role may
not (403 with the reason), and an outsider gets 404 for anything of the organization.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import PASSWORD, UserFactory
from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from orgs.models import Membership, Organization, Role
from orgs.tests.factories import MembershipFactory
from web.errors import server_error
from web.sessions import SIGNED_OUT, SLID_AT
from web.tests.factories import RunningDeploymentFactory

pytestmark = pytest.mark.django_db


def client_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def team_url(organization) -> str:
    return reverse("web:team", args=[organization.pk])


def role_of(user, organization) -> Role:
    return Membership.objects.get(user=user, organization=organization).role


# --- sign up, create, join --------------------------------------------------------------


def test_sign_up_signs_in():
    client = Client()
    form = {"username": "newcomer", "email": "", "password": PASSWORD}
    response = client.post(reverse("web:signup"), form, follow=True)
    assert response.redirect_chain[-1][0] == reverse("web:home")
    body = response.content.decode()
    assert "Signed in as <strong>newcomer</strong>" in body
    assert "Create an organization" in body


def test_sign_up_shows_every_problem_at_once():
    UserFactory(username="taken")
    form = {"username": "taken", "email": "not-an-email", "password": "123"}
    response = Client().post(reverse("web:signup"), form)
    assert response.status_code == 400
    body = response.content.decode()
    assert "Enter a valid email address." in body
    # The username clash comes from the service, which runs only once the shape is right.
    form["email"] = ""
    body = Client().post(reverse("web:signup"), form).content.decode()
    assert "This password is too short" in body and "entirely numeric" in body
    form["password"] = PASSWORD
    body = Client().post(reverse("web:signup"), form).content.decode()
    assert "A user with that username already exists." in body
    assert get_user_model().objects.filter(username="taken").count() == 1


def test_create_an_organization_makes_you_its_owner(developer):
    client = client_as(developer)
    response = client.post(reverse("web:organization-new"), {"name": "ml-research"})
    organization = Organization.objects.get(name="ml-research")
    assert response["Location"] == team_url(organization)
    assert role_of(developer, organization) == Role.OWNER


def test_join_by_code(organization, outsider):
    client = client_as(outsider)
    code = {"invite_code": organization.invite_code}
    response = client.post(reverse("web:organization-join"), code, follow=True)
    assert response.redirect_chain[-1][0] == reverse("web:dashboard", args=[organization.pk])
    assert f"You are a member of {organization.name}, as developer." in response.content.decode()
    assert role_of(outsider, organization) == Role.DEVELOPER


def test_join_with_an_unknown_code_says_so(outsider):
    response = client_as(outsider).post(reverse("web:organization-join"), {"invite_code": "nope"})
    assert response.status_code == 400
    assert "Unknown invite code." in response.content.decode()


# --- the team page: invite code and members -----------------------------------------------


@pytest.mark.parametrize(
    ("role", "sees_code"),
    [(Role.OWNER, True), (Role.ADMIN, True), (Role.DEVELOPER, False), (Role.VIEWER, False)],
)
def test_invite_code_is_for_owners_and_admins(organization, role, sees_code):
    user = MembershipFactory(organization=organization, role=role).user
    body = client_as(user).get(team_url(organization)).content.decode()
    assert (organization.invite_code in body) is sees_code
    assert ("Rotate the code" in body) is sees_code
    assert "Members" in body and user.username in body


def test_rotate_replaces_the_code(organization, admin_user):
    old = organization.invite_code
    url = reverse("web:invite-code-rotate", args=[organization.pk])
    assert client_as(admin_user).post(url)["Location"] == team_url(organization)
    organization.refresh_from_db()
    assert organization.invite_code != old


def test_developer_may_not_rotate(organization, developer):
    url = reverse("web:invite-code-rotate", args=[organization.pk])
    response = client_as(developer).post(url)
    assert response.status_code == 403
    assert "Only owners and admins rotate the code." in response.content.decode()


def test_outsider_gets_404_everywhere(organization, outsider, owner):
    client = client_as(outsider)
    cluster = ClusterFactory(organization=organization)
    for url in (
        team_url(organization),
        reverse("web:cluster-new", args=[organization.pk]),
        reverse("web:cluster-edit", args=[cluster.pk]),
        reverse("web:member-remove", args=[organization.pk, owner.pk]),
    ):
        assert client.get(url).status_code == 404, url
    url = reverse("web:member-role", args=[organization.pk, owner.pk])
    assert client.post(url, {"role": "viewer"}).status_code == 404
    assert role_of(owner, organization) == Role.OWNER


def test_admin_changes_roles_up_to_admin(organization, admin_user, developer, owner):
    client = client_as(admin_user)
    body = client.get(team_url(organization)).content.decode()
    # The admin's select for the developer offers no "Owner"; the owner's row no select.
    developer_row = body[body.index(f'data-member="{developer.username}"') :]
    developer_row = developer_row[: developer_row.index("</tr>")]
    assert 'value="admin"' in developer_row and 'value="owner"' not in developer_row
    owner_row = body[body.index(f'data-member="{owner.username}"') :]
    assert "<select" not in owner_row[: owner_row.index("</tr>")]

    url = reverse("web:member-role", args=[organization.pk, developer.pk])
    client.post(url, {"role": "admin"})
    assert role_of(developer, organization) == Role.ADMIN
    assert client.post(url, {"role": "owner"}).status_code == 403
    owner_url = reverse("web:member-role", args=[organization.pk, owner.pk])
    assert client.post(owner_url, {"role": "viewer"}).status_code == 403
    assert role_of(owner, organization) == Role.OWNER


def test_the_last_owner_stays(organization, owner):
    url = reverse("web:member-role", args=[organization.pk, owner.pk])
    response = client_as(owner).post(url, {"role": "admin"}, follow=True)
    assert "An organization must keep at least one owner." in response.content.decode()
    assert role_of(owner, organization) == Role.OWNER


def test_remove_asks_first_then_removes(organization, owner, developer):
    client = client_as(owner)
    url = reverse("web:member-remove", args=[organization.pk, developer.pk])
    page = client.get(url).content.decode()
    assert f"Remove {developer.username} from {organization.name}?" in page
    assert Membership.objects.filter(user=developer, organization=organization).exists()
    assert client.post(url)["Location"] == team_url(organization)
    assert not Membership.objects.filter(user=developer, organization=organization).exists()


def test_developer_may_leave_but_not_remove_others(organization, developer, viewer):
    client = client_as(developer)
    assert (
        client.post(reverse("web:member-remove", args=[organization.pk, viewer.pk])).status_code
        == 403
    )
    response = client.post(reverse("web:member-remove", args=[organization.pk, developer.pk]))
    assert response["Location"] == reverse("web:home")
    assert not Membership.objects.filter(user=developer, organization=organization).exists()


# --- clusters ----------------------------------------------------------------------------


def cluster_form(**overrides) -> dict:
    return {
        "name": "gpu-east",
        "cpu": "16",
        "ram_mb": "65536",
        "gpu": "4",
        "policy": "fifo",
        "starvation_after_seconds": "900",
        **overrides,
    }


def test_admin_adds_and_edits_a_cluster(organization, admin_user):
    client = client_as(admin_user)
    response = client.post(reverse("web:cluster-new", args=[organization.pk]), cluster_form())
    assert response["Location"] == team_url(organization)
    cluster = Cluster.objects.get(organization=organization, name="gpu-east")
    assert (cluster.capacity_cpu, cluster.capacity_gpu, cluster.policy) == (16000, 4, "fifo")
    assert cluster.starvation_after_seconds == 900

    edit = reverse("web:cluster-edit", args=[cluster.pk])
    assert 'value="gpu-east"' in client.get(edit).content.decode()
    client.post(edit, cluster_form(cpu="8.5", starvation_after_seconds="", policy="pack"))
    cluster.refresh_from_db()
    assert (cluster.capacity_cpu, cluster.policy, cluster.starvation_after_seconds) == (
        8500,
        "pack",
        None,
    )


def test_cluster_form_errors_all_at_once(organization, owner):
    ClusterFactory(organization=organization, name="taken")
    url = reverse("web:cluster-new", args=[organization.pk])
    body = client_as(owner).post(url, cluster_form(cpu="-1", gpu="x")).content.decode()
    assert "Please correct 2 problems" in body
    body = client_as(owner).post(url, cluster_form(name="taken")).content.decode()
    assert "A cluster with this name already exists in the organization." in body


def test_shrinking_below_what_runs_is_refused_on_the_form(organization, owner):
    cluster = ClusterFactory(organization=organization, allocated_cpu=4000)
    RunningDeploymentFactory(cluster=cluster, cpu=4000)
    edit = reverse("web:cluster-edit", args=[cluster.pk])
    response = client_as(owner).post(edit, cluster_form(name=cluster.name, cpu="1"))
    assert response.status_code == 400
    assert "below what running deployments hold" in response.content.decode()


def test_developer_may_not_add_clusters(organization, developer):
    response = client_as(developer).get(reverse("web:cluster-new", args=[organization.pk]))
    assert response.status_code == 403
    assert "Only owners and admins create clusters." in response.content.decode()


# --- error pages and sessions -------------------------------------------------------------


def test_error_pages_keep_the_site_and_a_way_home(developer):
    body = client_as(developer).get("/no/such/page/").content.decode()
    assert "Page not found" in body and 'href="/"' in body and "site-header" in body


def test_server_error_page_is_styled(rf):
    response = server_error(rf.get("/"))
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


def test_csrf_failure_page_explains(developer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(developer)
    response = client.post(reverse("web:organization-new"), {"name": "x"})
    assert response.status_code == 403
    body = response.content.decode()
    assert "This form has expired" in body and 'href="/"' in body


def test_activity_extends_the_session_at_most_once_per_slide(developer, settings):
    client = client_as(developer)  # signing in saved the session: its first slide

    def stored_end():
        return Session.objects.get(session_key=client.session.session_key).expire_date

    first = stored_end()
    # Within SESSION_SLIDE_SECONDS of the last slide, a request writes nothing.
    for _ in range(2):
        response = client.get(reverse("web:home"))
        assert "sessionid" not in response.cookies and stored_end() == first
    # Once that long has passed, the next request saves it: its end moves and the
    # cookie is sent again, its Max-Age restarted.
    session = client.session
    session[SLID_AT] -= settings.SESSION_SLIDE_SECONDS
    session.save()
    response = client.get(reverse("web:home"))
    assert response.cookies["sessionid"]["max-age"] == settings.SESSION_COOKIE_AGE
    assert stored_end() > first


def test_a_live_refresh_does_not_extend_the_session(developer, organization, settings):
    client = client_as(developer)
    session = client.session
    session[SLID_AT] -= settings.SESSION_SLIDE_SECONDS  # a page now would slide it
    session.save()
    response = client.get(reverse("web:dashboard-live", args=[organization.pk]))
    assert response.status_code == 200 and "sessionid" not in response.cookies


def test_signed_out_form_is_kept_across_signing_in(developer):
    client = Client()  # the session has ended
    url = reverse("web:organization-new")
    response = client.post(url, {"name": "typed-before"}, follow=True)
    assert response.redirect_chain[-1][0] == f"{reverse('web:login')}?next={url}"
    assert SIGNED_OUT in response.content.decode()
    assert not Organization.objects.filter(name="typed-before").exists()
    signed_in = client.post(
        f"{reverse('web:login')}?next={url}",
        {"username": developer.username, "password": PASSWORD, "next": url},
    )
    assert signed_in["Location"] == url
    assert 'value="typed-before"' in client.get(url).content.decode()
    assert 'value="typed-before"' not in client.get(url).content.decode()  # given back once
    assert not Organization.objects.filter(name="typed-before").exists()  # nothing submitted
