"""API.md's roles table, cell by cell: every role, an outsider and an anonymous caller,
times every action. Allowed: 2xx and the action happened. Refused: 403 for members, 404
for outsiders (existence is not leaked), 401 for anonymous callers, and nothing changed.

State comes from factories (rows only), so no scheduling pass is needed: running
deployments are written as running, with their cluster's allocation to match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient

from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from conftest import client_for
from deployments.models import Deployment, Status
from deployments.tests.factories import DeploymentFactory
from orgs.models import Membership, Organization, Role
from orgs.tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

MEMBERS = ("owner", "admin", "developer", "viewer")
CALLERS = (*MEMBERS, "outsider", "anonymous")


@dataclass
class World:
    organization: Organization
    cluster: Cluster
    owner: object
    colleague: object  # a developer of the organization, not the caller
    caller: object | None  # None: anonymous
    api: APIClient
    target: Deployment | None = None  # what a complete/fail/cancel acted on

    def running(self, *, created_by) -> Deployment:
        """A running deployment, with the cluster's allocation to match."""
        deployment = DeploymentFactory(
            cluster=self.cluster, created_by=created_by, status=Status.RUNNING,
            started_at=timezone.now(),
        )  # fmt: skip
        self.cluster.refresh_from_db()
        self.cluster.set_allocated(self.cluster.allocated + deployment.resources)
        self.cluster.save()
        return deployment

    def own_running(self) -> Deployment:
        """Created by the caller (an outsider may have created it before leaving)."""
        return self.running(created_by=self.caller or self.owner)

    def role_of(self, user) -> str | None:
        membership = Membership.objects.filter(organization=self.organization, user=user).first()
        return membership.role.value if membership else None


@dataclass(frozen=True)
class Action:
    allowed: frozenset[str]
    perform: Callable[[World], Response]
    # Whether the action took effect, given what `prepare` saw before and the answer
    # (None for reads): it must be true exactly when the caller is allowed.
    happened: Callable[[World, object, Response], bool] | None = None
    prepare: Callable[[World], object] = lambda w: None
    # What a member whose role does not allow it gets.
    refused_status: int = 403
    # What an outsider gets. Creates name the organization's object in the body, not the
    # path: they answer like a nonexistent id (400 on that field), leaking nothing either.
    outsider_status: int = 404


ROLE_REFUSED = "Your role in this organization does not allow this action."
EVERYONE = frozenset(MEMBERS)
CONTRIBUTORS = frozenset({"owner", "admin", "developer"})
MANAGERS = frozenset({"owner", "admin"})
OWNERS = frozenset({"owner"})


def _deployment_body(world: World) -> dict:
    return {
        "cluster": world.cluster.pk,
        "name": "matrix-job",
        "image": "registry.example.com:5000/team/trainer:1.4",
        "resources": {"cpu": 0.5, "ram_mb": 256, "gpu": 0},
    }


def _cluster_body(world: World) -> dict:
    return {
        "organization": world.organization.pk,
        "name": "matrix-cluster",
        "capacity": {"cpu": 4, "ram_mb": 4096, "gpu": 0},
    }


def _act(verb: str, *, own: bool) -> Callable[[World], Response]:
    def perform(world: World) -> Response:
        deployment = world.own_running() if own else world.running(created_by=world.colleague)
        world.target = deployment
        return world.api.post(f"/api/v1/deployments/{deployment.pk}/{verb}")

    return perform


def _acted(status: Status) -> Callable[[World, object, Response], bool]:
    def happened(world: World, _before: object, _response: Response) -> bool:
        world.target.refresh_from_db()
        return world.target.status == status

    return happened


def _org(world: World, suffix: str = "") -> str:
    return f"/api/v1/organizations/{world.organization.pk}{suffix}"


def _colleague(world: World) -> str:
    return _org(world, f"/members/{world.colleague.pk}")


def _queued(world: World) -> Deployment:
    return DeploymentFactory(cluster=world.cluster, created_by=world.owner)


ACTIONS: dict[str, Action] = {
    # --- read the organization, its clusters, deployments, queues, events ---
    "read-organization": Action(EVERYONE, lambda w: w.api.get(_org(w))),
    "read-cluster": Action(EVERYONE, lambda w: w.api.get(f"/api/v1/clusters/{w.cluster.pk}")),
    "read-deployment": Action(
        EVERYONE, lambda w: w.api.get(f"/api/v1/deployments/{_queued(w).pk}")
    ),
    "read-queue": Action(EVERYONE, lambda w: w.api.get(f"/api/v1/clusters/{w.cluster.pk}/queue")),
    "read-events": Action(
        EVERYONE, lambda w: w.api.get(f"/api/v1/deployments/{_queued(w).pk}/events")
    ),
    # --- create deployments; complete/fail/cancel their own ---
    "create-deployment": Action(
        CONTRIBUTORS,
        lambda w: w.api.post("/api/v1/deployments", _deployment_body(w), format="json"),
        happened=lambda w, _b, _r: Deployment.objects.filter(name="matrix-job").exists(),
        outsider_status=400,
    ),
    "complete-own": Action(CONTRIBUTORS, _act("complete", own=True), _acted(Status.COMPLETED)),
    "fail-own": Action(CONTRIBUTORS, _act("fail", own=True), _acted(Status.FAILED)),
    "cancel-own": Action(CONTRIBUTORS, _act("cancel", own=True), _acted(Status.CANCELLED)),
    # --- complete/fail/cancel anyone's deployment ---
    "complete-anyones": Action(MANAGERS, _act("complete", own=False), _acted(Status.COMPLETED)),
    "fail-anyones": Action(MANAGERS, _act("fail", own=False), _acted(Status.FAILED)),
    "cancel-anyones": Action(MANAGERS, _act("cancel", own=False), _acted(Status.CANCELLED)),
    # --- create, change, delete clusters ---
    "create-cluster": Action(
        MANAGERS,
        lambda w: w.api.post("/api/v1/clusters", _cluster_body(w), format="json"),
        happened=lambda w, _b, _r: Cluster.objects.filter(name="matrix-cluster").exists(),
        outsider_status=400,
    ),
    "change-cluster": Action(
        MANAGERS,
        lambda w: w.api.patch(
            f"/api/v1/clusters/{w.cluster.pk}", {"name": "renamed"}, format="json"
        ),
        happened=lambda w, _b, _r: Cluster.objects.filter(pk=w.cluster.pk, name="renamed").exists(),
    ),
    "delete-cluster": Action(
        MANAGERS,
        lambda w: w.api.delete(f"/api/v1/clusters/{w.cluster.pk}"),
        happened=lambda w, _b, _r: not Cluster.objects.filter(pk=w.cluster.pk).exists(),
    ),
    # --- see and rotate the invite code; list members ---
    # Seeing is a field, not an endpoint: members who may not see it get it as null.
    "see-invite-code": Action(
        MANAGERS,
        lambda w: w.api.get(_org(w)),
        happened=lambda w, _b, response: (
            response.status_code == 200
            and response.json()["invite_code"] == w.organization.invite_code
        ),
        refused_status=200,
    ),
    "rotate-invite-code": Action(
        MANAGERS,
        lambda w: w.api.post(_org(w, "/invite-code")),
        prepare=lambda w: w.organization.invite_code,
        happened=lambda w, old, _r: (
            Organization.objects.get(pk=w.organization.pk).invite_code != old
        ),
    ),
    "list-members": Action(EVERYONE, lambda w: w.api.get(_org(w, "/members"))),
    # --- change roles and remove members (up to admin) ---
    "change-role": Action(
        MANAGERS,
        lambda w: w.api.patch(_colleague(w), {"role": "admin"}, format="json"),
        happened=lambda w, _b, _r: w.role_of(w.colleague) == "admin",
    ),
    "remove-member": Action(
        MANAGERS,
        lambda w: w.api.delete(_colleague(w)),
        happened=lambda w, _b, _r: w.role_of(w.colleague) is None,
    ),
    # --- make owners, delete the organization ---
    "make-owner": Action(
        OWNERS,
        lambda w: w.api.patch(_colleague(w), {"role": "owner"}, format="json"),
        happened=lambda w, _b, _r: w.role_of(w.colleague) == "owner",
    ),
    "delete-organization": Action(
        OWNERS,
        lambda w: w.api.delete(_org(w)),
        happened=lambda w, _b, _r: not Organization.objects.filter(pk=w.organization.pk).exists(),
    ),
}


def _world(caller_kind: str) -> World:
    organization = OrganizationFactory()
    owner = MembershipFactory(organization=organization, role=Role.OWNER).user
    colleague = MembershipFactory(organization=organization, role=Role.DEVELOPER).user
    if caller_kind == "owner":
        caller = owner
    elif caller_kind in MEMBERS:
        caller = MembershipFactory(organization=organization, role=Role(caller_kind)).user
    elif caller_kind == "outsider":
        caller = MembershipFactory(role=Role.OWNER).user  # owner of another organization
    else:
        caller = None
    api = client_for(caller) if caller is not None else APIClient()
    cluster = ClusterFactory(organization=organization)
    return World(organization, cluster, owner, colleague, caller, api)


def _expected_status(action: Action, caller_kind: str) -> int | None:
    """None: any 2xx."""
    if caller_kind == "anonymous":
        return 401
    if caller_kind == "outsider":
        return action.outsider_status
    if caller_kind in action.allowed:
        return None
    return action.refused_status


@pytest.mark.parametrize("caller_kind", CALLERS)
@pytest.mark.parametrize("action_name", ACTIONS)
def test_role_matrix(action_name, caller_kind):
    action = ACTIONS[action_name]
    world = _world(caller_kind)
    before = action.prepare(world)

    response = action.perform(world)

    expected = _expected_status(action, caller_kind)
    if expected is None:
        assert 200 <= response.status_code < 300, (response.status_code, response.content)
    else:
        assert response.status_code == expected, (response.status_code, response.content)
    if expected == 403:  # a member, refused by the role check, and told so
        assert response.json() == {"detail": ROLE_REFUSED}, response.json()
    if expected == 400:  # the reference in the body is named, as if it did not exist
        assert set(response.json()) & {"cluster", "organization"}, response.json()
    if action.happened is not None:
        allowed = caller_kind in action.allowed
        assert action.happened(world, before, response) is allowed
