"""The Organizations table of API.md: organizations, invite codes and members."""

from __future__ import annotations

import math
import re

import pytest
from django.utils import timezone

from clusters.tests.factories import ClusterFactory
from deployments.models import Status
from deployments.tests.factories import DeploymentFactory
from orgs.models import Membership, Organization, Role
from orgs.tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

ORGS = "/api/v1/organizations"
URL_SAFE = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)


def _org(organization: Organization) -> str:
    return f"{ORGS}/{organization.pk}"


def _member(organization: Organization, user) -> str:
    return f"{ORGS}/{organization.pk}/members/{user.pk}"


def _role_of(organization: Organization, user) -> str | None:
    membership = Membership.objects.filter(organization=organization, user=user).first()
    return membership.role.value if membership else None


def _assert_strong_invite_code(code: str) -> None:
    """URL-safe and at least 80 bits: 6 bits per character of the URL-safe alphabet."""
    assert URL_SAFE.fullmatch(code), code
    assert len(code) * math.log2(64) >= 80, code


# --- create, list, retrieve -------------------------------------------------------------


def test_create_makes_the_creator_its_owner(as_user, user):
    response = as_user(user).post(ORGS, {"name": "ml-research"}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    organization = Organization.objects.get(pk=body["id"])
    assert body["name"] == "ml-research"
    assert body["role"] == "owner"
    assert body["invite_code"] == organization.invite_code
    _assert_strong_invite_code(body["invite_code"])
    assert _role_of(organization, user) == "owner"
    assert organization.memberships.count() == 1


def test_invite_codes_are_unique_and_random(as_user, user):
    api = as_user(user)
    codes = {
        api.post(ORGS, {"name": f"o{i}"}, format="json").json()["invite_code"] for i in range(20)
    }

    assert len(codes) == 20
    for code in codes:
        _assert_strong_invite_code(code)


def test_create_without_a_name_is_400(as_user, user):
    response = as_user(user).post(ORGS, {}, format="json")

    assert response.status_code == 400
    assert "name" in response.json()
    assert not Organization.objects.exists()


def test_list_shows_the_callers_organizations_with_role_and_invite_code_by_role(as_user, user):
    owned = MembershipFactory(user=user, role=Role.OWNER).organization
    administered = MembershipFactory(user=user, role=Role.ADMIN).organization
    developed = MembershipFactory(user=user, role=Role.DEVELOPER).organization
    viewed = MembershipFactory(user=user, role=Role.VIEWER).organization
    MembershipFactory(role=Role.OWNER)  # a stranger's organization

    response = as_user(user).get(ORGS)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert {"count", "next", "previous", "results"} <= set(body)
    seen = {item["id"]: (item["role"], item["invite_code"]) for item in body["results"]}
    assert seen == {
        owned.pk: ("owner", owned.invite_code),
        administered.pk: ("admin", administered.invite_code),
        developed.pk: ("developer", None),
        viewed.pk: ("viewer", None),
    }


def test_list_is_paginated(as_user, user):
    for _ in range(3):
        MembershipFactory(user=user, role=Role.VIEWER)

    body = as_user(user).get(ORGS, {"page_size": 2}).json()

    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"] is not None


@pytest.mark.parametrize(
    ("role", "sees_code"),
    [(Role.OWNER, True), (Role.ADMIN, True), (Role.DEVELOPER, False), (Role.VIEWER, False)],
)
def test_retrieve(as_user, organization, role, sees_code):
    member = MembershipFactory(organization=organization, role=role).user

    response = as_user(member).get(_org(organization))

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["name"], body["role"]) == (
        organization.pk,
        organization.name,
        role.value,
    )
    assert body["invite_code"] == (organization.invite_code if sees_code else None)


# --- delete -----------------------------------------------------------------------------


def test_owner_deletes_the_organization_with_its_idle_clusters(as_user, owner, organization):
    cluster = ClusterFactory(organization=organization)
    DeploymentFactory(cluster=cluster, status=Status.COMPLETED, finished_at=timezone.now())

    response = as_user(owner).delete(_org(organization))

    assert response.status_code == 204
    assert not Organization.objects.filter(pk=organization.pk).exists()
    assert not Membership.objects.filter(organization_id=organization.pk).exists()


@pytest.mark.parametrize("role", [Role.ADMIN, Role.DEVELOPER, Role.VIEWER])
def test_only_owners_delete_the_organization(as_user, organization, role):
    member = MembershipFactory(organization=organization, role=role).user

    response = as_user(member).delete(_org(organization))

    assert response.status_code == 403
    assert Organization.objects.filter(pk=organization.pk).exists()


@pytest.mark.parametrize("status", [Status.RUNNING, Status.QUEUED, Status.PENDING])
def test_delete_is_409_while_a_cluster_has_running_or_waiting_work(
    as_user, owner, organization, status
):
    cluster = ClusterFactory(organization=organization)
    ClusterFactory(organization=organization)  # an idle one does not help
    now = timezone.now()
    if status == Status.RUNNING:
        DeploymentFactory(cluster=cluster, status=status, started_at=now)
        cluster.allocated_cpu, cluster.allocated_ram_mb = 1000, 1024
        cluster.save()
    else:
        DeploymentFactory(cluster=cluster, status=status)

    response = as_user(owner).delete(_org(organization))

    assert response.status_code == 409
    assert response.json()["code"] == "cluster_busy"
    assert Organization.objects.filter(pk=organization.pk).exists()
    assert cluster.deployments.filter(status=status).exists()


# --- join -------------------------------------------------------------------------------


def test_join_makes_a_developer(as_user, organization, user):
    response = as_user(user).post(
        f"{ORGS}/join", {"invite_code": organization.invite_code}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "id": organization.pk,
        "name": organization.name,
        "role": "developer",
    }
    assert _role_of(organization, user) == "developer"


def test_join_with_an_unknown_code_is_400(as_user, organization, user):
    response = as_user(user).post(f"{ORGS}/join", {"invite_code": "nope"}, format="json")

    assert response.status_code == 400
    assert "invite_code" in response.json()
    assert _role_of(organization, user) is None


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.VIEWER])
def test_joining_twice_keeps_the_existing_role(as_user, organization, role):
    member = MembershipFactory(organization=organization, role=role).user

    response = as_user(member).post(
        f"{ORGS}/join", {"invite_code": organization.invite_code}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["role"] == role.value
    assert _role_of(organization, member) == role.value
    assert organization.memberships.filter(user=member).count() == 1


@pytest.mark.parametrize("how", ["leaves", "is removed"])
def test_a_member_demoted_to_viewer_who_leaves_rejoins_as_a_viewer(
    as_user, organization, owner, developer, how
):
    """Issue 16, finding 7: demoted to viewer, left, rejoined with the same code as a
    developer."""
    member = f"{ORGS}/{organization.pk}/members/{developer.pk}"
    assert as_user(owner).patch(member, {"role": "viewer"}, format="json").status_code == 200
    remover = developer if how == "leaves" else owner
    assert as_user(remover).delete(member).status_code == 204

    response = as_user(developer).post(
        f"{ORGS}/join", {"invite_code": organization.invite_code}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["role"] == "viewer"
    assert _role_of(organization, developer) == "viewer"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.DEVELOPER])
def test_a_member_who_left_rejoins_as_at_most_a_developer(as_user, organization, owner, role):
    user = MembershipFactory(organization=organization, role=role).user
    assert as_user(user).delete(f"{ORGS}/{organization.pk}/members/{user.pk}").status_code == 204

    response = as_user(user).post(
        f"{ORGS}/join", {"invite_code": organization.invite_code}, format="json"
    )

    assert response.json()["role"] == "developer"


# --- invite code ------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_rotating_the_invite_code_kills_the_old_one_at_once(as_user, organization, user, role):
    manager = MembershipFactory(organization=organization, role=role).user
    old = organization.invite_code

    response = as_user(manager).post(f"{_org(organization)}/invite-code")

    assert response.status_code == 200
    new = response.json()["invite_code"]
    assert new != old
    _assert_strong_invite_code(new)
    joiner = as_user(user)
    assert joiner.post(f"{ORGS}/join", {"invite_code": old}, format="json").status_code == 400
    assert joiner.post(f"{ORGS}/join", {"invite_code": new}, format="json").status_code == 200


@pytest.mark.parametrize("role", [Role.DEVELOPER, Role.VIEWER])
def test_developers_and_viewers_cannot_rotate_the_invite_code(as_user, organization, role):
    member = MembershipFactory(organization=organization, role=role).user
    old = organization.invite_code

    response = as_user(member).post(f"{_org(organization)}/invite-code")

    assert response.status_code == 403
    organization.refresh_from_db()
    assert organization.invite_code == old


# --- members ----------------------------------------------------------------------------


def test_members_lists_everyone_with_their_role(as_user, organization, owner, developer, viewer):
    MembershipFactory(role=Role.OWNER)  # someone else's organization

    response = as_user(viewer).get(f"{_org(organization)}/members")

    assert response.status_code == 200
    members = {(m["user"]["id"], m["user"]["username"], m["role"]) for m in response.json()}
    assert members == {
        (owner.pk, owner.username, "owner"),
        (developer.pk, developer.username, "developer"),
        (viewer.pk, viewer.username, "viewer"),
    }


@pytest.mark.parametrize("actor_role", [Role.OWNER, Role.ADMIN])
@pytest.mark.parametrize(
    ("from_role", "to_role"),
    [
        (Role.VIEWER, Role.DEVELOPER),
        (Role.DEVELOPER, Role.ADMIN),
        (Role.ADMIN, Role.VIEWER),
        (Role.DEVELOPER, Role.VIEWER),
    ],
)
def test_owners_and_admins_change_roles_up_to_admin(
    as_user, organization, owner, actor_role, from_role, to_role
):
    actor = (
        owner
        if actor_role == Role.OWNER
        else MembershipFactory(organization=organization, role=actor_role).user
    )
    target = MembershipFactory(organization=organization, role=from_role).user

    response = as_user(actor).patch(
        _member(organization, target), {"role": to_role.value}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["role"] == to_role.value
    assert response.json()["user"] == {"id": target.pk, "username": target.username}
    assert _role_of(organization, target) == to_role.value


def test_an_admin_cannot_make_owners(as_user, organization, admin_user, developer):
    response = as_user(admin_user).patch(
        _member(organization, developer), {"role": "owner"}, format="json"
    )

    assert response.status_code == 403
    assert _role_of(organization, developer) == "developer"


def test_an_admin_cannot_make_themselves_owner(as_user, organization, admin_user):
    response = as_user(admin_user).patch(
        _member(organization, admin_user), {"role": "owner"}, format="json"
    )

    assert response.status_code == 403
    assert _role_of(organization, admin_user) == "admin"


@pytest.mark.parametrize("to_role", [Role.ADMIN, Role.VIEWER])
def test_an_admin_cannot_touch_owners(as_user, organization, owner, admin_user, to_role):
    MembershipFactory(organization=organization, role=Role.OWNER)  # not the last owner

    demote = as_user(admin_user).patch(
        _member(organization, owner), {"role": to_role.value}, format="json"
    )
    remove = as_user(admin_user).delete(_member(organization, owner))

    assert demote.status_code == 403
    assert remove.status_code == 403
    assert _role_of(organization, owner) == "owner"


def test_an_owner_makes_owners(as_user, organization, owner, admin_user):
    response = as_user(owner).patch(
        _member(organization, admin_user), {"role": "owner"}, format="json"
    )

    assert response.status_code == 200
    assert _role_of(organization, admin_user) == "owner"


@pytest.mark.parametrize("role", [Role.DEVELOPER, Role.VIEWER])
def test_developers_and_viewers_cannot_change_roles_or_remove(as_user, organization, role):
    actor = MembershipFactory(organization=organization, role=role).user
    target = MembershipFactory(organization=organization, role=Role.VIEWER).user

    change = as_user(actor).patch(_member(organization, target), {"role": "admin"}, format="json")
    promote_self = as_user(actor).patch(
        _member(organization, actor), {"role": "admin"}, format="json"
    )
    remove = as_user(actor).delete(_member(organization, target))

    assert (change.status_code, promote_self.status_code, remove.status_code) == (403, 403, 403)
    assert _role_of(organization, target) == "viewer"
    assert _role_of(organization, actor) == role.value


def test_an_unknown_role_is_400(as_user, organization, owner, developer):
    response = as_user(owner).patch(
        _member(organization, developer), {"role": "superuser"}, format="json"
    )

    assert response.status_code == 400
    assert "role" in response.json()


@pytest.mark.parametrize("actor_role", [Role.OWNER, Role.ADMIN])
def test_owners_and_admins_remove_members_up_to_admin(
    as_user, organization, owner, developer, actor_role
):
    actor = (
        owner
        if actor_role == Role.OWNER
        else MembershipFactory(organization=organization, role=actor_role).user
    )
    other_admin = MembershipFactory(organization=organization, role=Role.ADMIN).user

    assert as_user(actor).delete(_member(organization, developer)).status_code == 204
    assert as_user(actor).delete(_member(organization, other_admin)).status_code == 204
    assert _role_of(organization, developer) is None
    assert _role_of(organization, other_admin) is None


def test_an_owner_removes_another_owner(as_user, organization, owner):
    other = MembershipFactory(organization=organization, role=Role.OWNER).user

    assert as_user(owner).delete(_member(organization, other)).status_code == 204
    assert _role_of(organization, other) is None


def test_removing_a_non_member_is_404(as_user, organization, owner, outsider):
    assert as_user(owner).delete(_member(organization, outsider)).status_code == 404
    assert (
        as_user(owner)
        .patch(_member(organization, outsider), {"role": "viewer"}, format="json")
        .status_code
        == 404
    )


# --- the last owner ---------------------------------------------------------------------


@pytest.mark.parametrize("to_role", [Role.ADMIN, Role.DEVELOPER, Role.VIEWER])
def test_the_last_owner_cannot_be_demoted(as_user, organization, owner, to_role):
    response = as_user(owner).patch(
        _member(organization, owner), {"role": to_role.value}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "last_owner"
    assert "owner" in response.json()["detail"]
    assert _role_of(organization, owner) == "owner"


def test_the_last_owner_cannot_leave(as_user, organization, owner, developer):
    response = as_user(owner).delete(_member(organization, owner))

    assert response.status_code == 409
    assert response.json()["code"] == "last_owner"
    assert _role_of(organization, owner) == "owner"


def test_an_owner_may_step_down_while_another_owner_remains(as_user, organization, owner):
    other = MembershipFactory(organization=organization, role=Role.OWNER).user

    response = as_user(owner).patch(_member(organization, owner), {"role": "admin"}, format="json")

    assert response.status_code == 200
    assert _role_of(organization, owner) == "admin"
    # Now `other` is the last owner.
    last = as_user(other).patch(_member(organization, other), {"role": "admin"}, format="json")
    assert last.status_code == 409


@pytest.mark.parametrize("role", [Role.ADMIN, Role.DEVELOPER, Role.VIEWER])
def test_a_member_may_leave(as_user, organization, owner, role):
    member = MembershipFactory(organization=organization, role=role).user

    response = as_user(member).delete(_member(organization, member))

    assert response.status_code == 204
    assert _role_of(organization, member) is None
    assert as_user(member).get(_org(organization)).status_code == 404


def test_an_owner_may_leave_while_another_owner_remains(as_user, organization, owner):
    MembershipFactory(organization=organization, role=Role.OWNER)

    assert as_user(owner).delete(_member(organization, owner)).status_code == 204
    assert _role_of(organization, owner) is None


# --- outsiders get 404, never 403 -------------------------------------------------------

OUTSIDER_REQUESTS = [
    ("get", "{org}", None),
    ("delete", "{org}", None),
    ("post", "{org}/invite-code", None),
    ("get", "{org}/members", None),
    ("patch", "{org}/members/{member}", {"role": "viewer"}),
    ("patch", "{org}/members/{member}", {"role": "owner"}),
    ("patch", "{org}/members/{member}", {}),
    ("delete", "{org}/members/{member}", None),
    ("delete", "{org}/members/{outsider}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), OUTSIDER_REQUESTS)
def test_outsiders_get_404_on_every_organization_endpoint(
    as_user, organization, owner, developer, outsider, method, path, body
):
    url = path.format(org=_org(organization), member=developer.pk, outsider=outsider.pk)
    missing = path.format(
        org=f"{ORGS}/{Organization.objects.order_by('-pk').first().pk + 1000}",
        member=developer.pk,
        outsider=outsider.pk,
    )
    api = as_user(outsider)

    response = getattr(api, method)(url, body, format="json")

    assert response.status_code == 404, response.content
    # Exactly the answer for an organization that does not exist.
    assert response.json() == getattr(api, method)(missing, body, format="json").json()
    organization.refresh_from_db()
    assert _role_of(organization, developer) == "developer"
    assert _role_of(organization, outsider) is None


def test_outsiders_do_not_see_the_organization_in_lists(as_user, organization, owner, outsider):
    ids = [o["id"] for o in as_user(outsider).get(ORGS).json()["results"]]

    assert organization.pk not in ids
    assert len(ids) == 1  # their own


def test_a_former_member_is_an_outsider(as_user, organization, owner, developer):
    as_user(developer).delete(_member(organization, developer))

    assert as_user(developer).get(_org(organization)).status_code == 404
    assert as_user(developer).get(f"{_org(organization)}/members").status_code == 404


def test_anonymous_gets_401_on_organization_endpoints(anon, organization):
    assert anon.get(ORGS).status_code == 401
    assert anon.post(ORGS, {"name": "x"}, format="json").status_code == 401
    assert anon.get(_org(organization)).status_code == 401
    assert anon.post(f"{ORGS}/join", {"invite_code": organization.invite_code}).status_code == 401
    assert not Organization.objects.filter(name="x").exists()
