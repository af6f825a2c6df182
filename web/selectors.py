"""What each page shows, assembled from the apps' selectors and scoped to the caller.

Every function returns None when the caller may not see the object, and the views
answer 404 for it: an outsider cannot tell a foreign object from a missing one.
Query counts and costs do not grow with the number of deployments: the dashboard shows
the head of each cluster's queue and a count, a deployment's page its position, each read
by index (scheduler/selectors.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from clusters.models import Cluster
from clusters.selectors import cluster_list
from clusters.usage import Usage, cluster_usage
from deployments import permissions as rules
from deployments.models import HOLDS_ROOM, Dependency, Deployment, DeploymentEvent, Status
from deployments.selectors import (
    deployment_dependents,
    deployment_events,
    deployment_list,
    deployment_search,
)
from deployments.statemachine import RULES, Action
from hypervisor.resources import NAMES, Resources
from orgs.models import Membership, Organization, Role
from orgs.selectors import (
    member_removal_allowed,
    member_role_change_allowed,
    membership_get,
    membership_list,
    organization_permissions,
)
from scheduler.selectors import QueueItem, cluster_queue, queue_position

RECENT_DEPLOYMENTS = 15
QUEUE_HEAD = 10  # of each cluster's queue on the dashboard; the rest is counted
DEPLOYMENTS_PER_PAGE = 50


@dataclass(frozen=True)
class Access:
    """The caller's role and permissions in one organization."""

    role: Role
    permissions: frozenset[str]

    @property
    def may_submit(self) -> bool:
        return rules.may_submit(permissions=self.permissions)

    def may_act_on(self, deployment: Deployment, user: AbstractBaseUser) -> bool:
        return rules.may_act_on(permissions=self.permissions, deployment=deployment, user=user)


def access_get(*, user: AbstractBaseUser, organization_id: int) -> Access | None:
    membership = membership_get(user=user, organization_id=organization_id)
    if membership is None:
        return None
    permissions = organization_permissions(user=user, organization_id=organization_id)
    return Access(role=membership.role, permissions=permissions)


@dataclass(frozen=True)
class MemberActions:
    """What the caller may do to one member: the roles they may give (empty: none)
    and whether they may remove them (or, for themselves, leave)."""

    roles: list[Role]
    may_remove: bool


def member_actions(*, access: Access, actor: AbstractBaseUser, target: Membership) -> MemberActions:
    """The roles matrix (`orgs.selectors`), asked for each role."""
    roles = [
        role
        for role in Role
        if member_role_change_allowed(permissions=access.permissions, target=target, role=role)
    ]
    may_remove = member_removal_allowed(permissions=access.permissions, actor=actor, target=target)
    return MemberActions(roles=roles, may_remove=may_remove)


def memberships_of(*, user: AbstractBaseUser) -> list[Membership]:
    """The caller's organizations with the caller's role in each, by name."""
    return list(
        Membership.objects.filter(user=user)
        .select_related("organization", "group")
        .order_by("organization__name", "organization_id")
    )


MAX_HOLDERS_NAMED = 3


@dataclass(frozen=True)
class QueueRow:
    """A waiting deployment with the running work that holds the room it needs and that
    it may not preempt (equal or higher priority, or not preemptible), biggest first."""

    item: QueueItem
    holders: list[Deployment]
    more_holders: int


def queue_rows(
    *, cluster: Cluster, queue: list[QueueItem], running: list[Deployment]
) -> list[QueueRow]:
    free = cluster.capacity - cluster.allocated
    rows = []
    for item in queue:
        waiting = item.deployment
        holders: list[Deployment] = []
        # Only for what waits for room: a request beyond the capacity, or one waiting
        # for its dependencies, is held by nothing that runs.
        if waiting.status == Status.QUEUED and waiting.resources.fits_in(cluster.capacity):
            short = waiting.resources.shortfall(free)
            holders = sorted(
                (d for d in running if _holds(d, short, waiting)),
                key=lambda d: (*(-v for v in d.resources.values()), d.pk),
            )
        shown = holders[:MAX_HOLDERS_NAMED]
        rows.append(QueueRow(item=item, holders=shown, more_holders=len(holders) - len(shown)))
    return rows


def _holds(running: Deployment, short: Resources, waiting: Deployment) -> bool:
    """Whether `running` holds room that `waiting` lacks, and may not be preempted for it."""
    unstoppable = running.priority >= waiting.priority or not running.preemptible
    held = running.resources
    return unstoppable and any(getattr(short, n) and getattr(held, n) for n in NAMES)


@dataclass
class ClusterPanel:
    cluster: Cluster
    usage: list[Usage]
    queue: list[QueueItem]  # its head
    waiting: int  # how many wait in all
    running: list[Deployment] = field(default_factory=list)

    @property
    def queue_rows(self) -> list[QueueRow]:
        return queue_rows(cluster=self.cluster, queue=self.queue, running=self.running)


@dataclass
class Dashboard:
    organization: Organization
    access: Access
    panels: list[ClusterPanel]
    recent: list[Deployment]


def dashboard_get(*, user: AbstractBaseUser, organization_id: int) -> Dashboard | None:
    access = access_get(user=user, organization_id=organization_id)
    if access is None:
        return None
    organization = Organization.objects.visible_to(user).get(pk=organization_id)
    clusters = list(cluster_list(user=user, organization_id=organization_id))
    running: dict[int, list[Deployment]] = defaultdict(list)
    for deployment in (
        deployment_list(user=user, organization_id=organization_id, status=Status.RUNNING)
        .prefetch_related(None)
        .order_by("-priority", "started_at", "id")
    ):
        running[deployment.cluster_id].append(deployment)
    panels = []
    for cluster in clusters:
        head = cluster_queue(cluster=cluster, limit=QUEUE_HEAD)
        panels.append(
            ClusterPanel(
                cluster=cluster,
                usage=cluster_usage(cluster),
                queue=head.items,
                waiting=head.total,
                running=running[cluster.pk],
            )
        )
    recent = list(
        deployment_list(user=user, organization_id=organization_id)
        .prefetch_related(None)
        .order_by("-id")[:RECENT_DEPLOYMENTS]
    )
    return Dashboard(organization=organization, access=access, panels=panels, recent=recent)


@dataclass
class DeploymentPage:
    deployment: Deployment
    access: Access
    dependencies: list[Dependency]
    dependents: list[tuple[Deployment, str]]  # what waits on it, with the condition
    events: list[DeploymentEvent]
    queue_item: QueueItem | None
    queue_row: QueueRow | None
    actions: list[Action]


def deployment_access_get(
    *, user: AbstractBaseUser, deployment_id: int
) -> tuple[Deployment, Access] | None:
    """A deployment the caller can see, with the caller's access to its organization."""
    deployment = (
        deployment_list(user=user)
        .select_related("cluster__organization")
        .filter(pk=deployment_id)
        .first()
    )
    if deployment is None:
        return None
    access = access_get(user=user, organization_id=deployment.cluster.organization_id)
    return None if access is None else (deployment, access)


def deployment_page_get(*, user: AbstractBaseUser, deployment_id: int) -> DeploymentPage | None:
    found = deployment_access_get(user=user, deployment_id=deployment_id)
    if found is None:
        return None
    deployment, access = found
    conditions = dict(
        Dependency.objects.filter(dependency=deployment).values_list("dependent_id", "condition")
    )
    dependents = [
        (other, conditions.get(other.pk, ""))
        for other in deployment_dependents(user=user, deployment=deployment).prefetch_related(None)
    ]
    # Its place by two index counts (not a read of the queue), and what holds its room.
    queue_item, queue_row = queue_position(deployment=deployment), None
    if queue_item is not None:
        running = (
            deployment_list(user=user, cluster_id=deployment.cluster_id)
            .filter(status__in=HOLDS_ROOM)
            .prefetch_related(None)
        )
        rows = queue_rows(cluster=deployment.cluster, queue=[queue_item], running=list(running))
        queue_row = rows[0]
    return DeploymentPage(
        deployment=deployment,
        access=access,
        dependencies=list(deployment.dependency_links.all()),
        dependents=dependents,
        events=list(deployment_events(deployment=deployment)),
        queue_item=queue_item,
        queue_row=queue_row,
        actions=available_actions(deployment=deployment, access=access, user=user),
    )


def available_actions(
    *, deployment: Deployment, access: Access, user: AbstractBaseUser
) -> list[Action]:
    """The buttons to show: what the role allows and the status admits."""
    if not access.may_act_on(deployment, user):
        return []
    return [a for a in Action if deployment.status in RULES[a].sources]


def members_of(*, user: AbstractBaseUser, organization_id: int) -> QuerySet:
    """The organization's members (as users), by username: who may have submitted."""
    user_ids = membership_list(user=user, organization_id=organization_id).values("user_id")
    return get_user_model().objects.filter(pk__in=user_ids).order_by("username")


def deployments_page_get(*, user: AbstractBaseUser, page: str | None, **criteria) -> Page:
    """One page of the deployments list: the API list's selector (`criteria` are its
    keyword arguments), paginated."""
    deployments = deployment_search(user=user, **criteria).prefetch_related(None)
    return Paginator(deployments, DEPLOYMENTS_PER_PAGE).get_page(page)
