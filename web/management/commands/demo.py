"""`manage.py demo`: a demo organization to look at, made through the services.

Users of every role (with a known password), two clusters, and deployments that the
scheduler really placed: running, queued, pending on dependencies, finished, and one
preempted by a higher-priority deployment. When a Docker engine answers (DOCKER_HOST or
/var/run/docker.sock), it is registered as runtime `local-docker` and a third cluster
runs a deployment on it for real (with an image the engine already has). Runs once: a second run changes nothing and
prints how to sign in again.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import user_register
from clusters.models import Cluster
from clusters.services import cluster_create
from deployments.models import Condition, Deployment
from deployments.selectors import deployment_list
from deployments.services import (
    Action,
    DependencySpec,
    DeploymentSpec,
    deployment_act,
    deployment_create,
)
from hypervisor.resources import Resources
from orgs.models import Organization, Role
from orgs.services import membership_change_role, organization_create, organization_join
from planner import Policy
from runtime.discovery import find_local_docker
from runtime.services import RuntimeSpec, runtime_add
from scheduler.services import schedule_cluster

ORGANIZATION = "Demo Labs"
PASSWORD = "hypervisor-demo"
USERS = {
    Role.OWNER: "demo-owner",
    Role.ADMIN: "demo-admin",
    Role.DEVELOPER: "demo-developer",
    Role.VIEWER: "demo-viewer",
}
GIB = 1024


def resources(cores: str, ram_gib: int, gpu: int = 0) -> Resources:
    return Resources(int(Decimal(cores) * 1000), ram_gib * GIB, gpu)


class Command(BaseCommand):
    help = "Create a demo organization with users of each role, clusters and deployments."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off (the demo users have a published password).",
        )

    def handle(self, *args, force: bool, **options) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                "Refusing to create users with a published password while DEBUG is off; "
                "run with DEBUG=true (a development machine) or pass --force."
            )
        if get_user_model().objects.filter(username__in=USERS.values()).exists():
            self.stdout.write("The demo data is already there; nothing changed.")
            self._print_sign_in()
            return
        scheduler_logger = logging.getLogger("scheduler")
        level = scheduler_logger.level
        if options["verbosity"] < 2:  # a log line per pass would drown the summary
            scheduler_logger.setLevel(logging.WARNING)
        try:
            organization, owner = self._create()
        finally:
            scheduler_logger.setLevel(level)
        self._print_summary(organization, owner)
        self._print_sign_in()

    def _create(self) -> tuple[Organization, object]:
        users = {
            role: user_register(username=name, password=PASSWORD) for role, name in USERS.items()
        }
        organization = self._organization(users)
        gpu, cpu = self._clusters(organization)
        self._gpu_story(gpu, users)
        self._cpu_story(cpu, users)
        self._docker_story(organization, users)
        return organization, users[Role.OWNER]

    def _docker_story(self, organization: Organization, users: dict[Role, object]) -> None:
        """With a Docker engine that answers, a cluster whose deployments really run."""
        local = find_local_docker()
        if local is None:
            self.stdout.write(
                "No Docker engine answers (DOCKER_HOST, /var/run/docker.sock): the demo's "
                "clusters are manual."
            )
            return
        runtime = runtime_add(
            spec=RuntimeSpec(
                name="local-docker",
                kind="docker",
                endpoint=local.endpoint,
                options={"network": "none", "pull": "never"},
                credentials={},
            )
        )
        cluster = cluster_create(
            organization=organization,
            name="docker-local",
            capacity=resources("2", 2),
            runtime=runtime.name,
        )
        self.stdout.write(
            f"Registered the Docker engine at {local.endpoint} as runtime "
            f"{runtime.name}; cluster {cluster.name} runs on it."
        )
        if not local.images:
            self.stdout.write("It has no image yet: submit one of yours to docker-local.")
            return
        script = "for i in $(seq 1 300); do echo step $i; sleep 1; done"
        self._submit(
            users[Role.DEVELOPER],
            cluster,
            "hello-docker",
            resources("0.5", 1),
            image=local.images[0],
            command=["sh", "-c", script],
        )

    def _organization(self, users: dict[Role, object]) -> Organization:
        organization = organization_create(actor=users[Role.OWNER], name=ORGANIZATION)
        for role in (Role.ADMIN, Role.DEVELOPER, Role.VIEWER):
            membership = organization_join(actor=users[role], invite_code=organization.invite_code)
            if role != Role.DEVELOPER:
                membership_change_role(target=membership, role=role, may_touch_owners=True)
        return organization

    def _clusters(self, organization: Organization) -> tuple[Cluster, Cluster]:
        gpu = cluster_create(
            organization=organization, name="gpu-east", capacity=resources("16", 64, 4)
        )
        cpu = cluster_create(
            organization=organization,
            name="cpu-west",
            capacity=resources("8", 32),
            policy=Policy.PACK,
            starvation_after_seconds=900,
        )
        return gpu, cpu

    def _submit(self, actor, cluster: Cluster, name: str, request: Resources, **spec) -> Deployment:
        deployment = deployment_create(
            actor=actor,
            cluster=cluster,
            spec=DeploymentSpec(
                name=name,
                image=spec.pop("image", f"registry.example.com/demo/{name}:1.0"),
                resources=request,
                **spec,
            ),
        )
        # With REDIS_URL set the pass would wait for a worker; run it here so that the
        # demo's state is settled when the command ends (a pass is idempotent).
        schedule_cluster(cluster_id=cluster.pk)
        return deployment

    def _act(self, actor, deployment: Deployment, action: Action) -> None:
        deployment_act(actor=actor, deployment_id=deployment.pk, action=action)
        schedule_cluster(cluster_id=deployment.cluster_id)

    def _gpu_story(self, cluster: Cluster, users: dict[Role, object]) -> None:
        dev, admin = users[Role.DEVELOPER], users[Role.ADMIN]
        prepare = self._submit(dev, cluster, "prepare-data", resources("4", 8), priority=100)
        smoke = self._submit(dev, cluster, "smoke-test", resources("1", 1))
        self._act(dev, smoke, Action.COMPLETE)
        flaky = self._submit(dev, cluster, "flaky-benchmark", resources("1", 1))
        self._act(dev, flaky, Action.FAIL)
        train = self._submit(
            dev,
            cluster,
            "train-resnet",
            resources("8", 32, 2),
            priority=100,
            depends_on=(DependencySpec(prepare.pk),),
        )
        self._submit(
            dev,
            cluster,
            "evaluate-resnet",
            resources("2", 4, 1),
            priority=100,
            depends_on=(DependencySpec(train.pk, Condition.SUCCEEDED),),
        )
        self._submit(admin, cluster, "batch-embeddings", resources("4", 16, 2), priority=10)
        self._submit(
            dev, cluster, "hparam-sweep", resources("4", 16, 2), priority=50, preemptible=False
        )
        # No GPU left: this one preempts batch-embeddings, the lowest preemptible priority.
        self._submit(admin, cluster, "urgent-finetune", resources("4", 16, 2), priority=500)
        self._submit(dev, cluster, "nightly-report", resources("2", 4, 1))
        stale = self._submit(dev, cluster, "stale-notebook", resources("1", 2, 1))
        self._act(dev, stale, Action.CANCEL)

    def _cpu_story(self, cluster: Cluster, users: dict[Role, object]) -> None:
        dev, owner = users[Role.DEVELOPER], users[Role.OWNER]
        self._submit(dev, cluster, "etl-orders", resources("4", 8), priority=20)
        self._submit(dev, cluster, "etl-customers", resources("3", 8), priority=20)
        self._submit(owner, cluster, "report-builder", resources("2", 4), priority=5)
        self._submit(dev, cluster, "cache-warmup", resources("0.5", 1))

    def _print_summary(self, organization: Organization, owner) -> None:
        self.stdout.write(self.style.SUCCESS(f'Created the demo organization "{organization}".'))
        deployments = deployment_list(user=owner, organization_id=organization.pk).order_by(
            "cluster_id", "id"
        )
        for deployment in deployments:
            preempted = (
                f", preempted {deployment.preemption_count}x" if deployment.preemption_count else ""
            )
            self.stdout.write(
                f"  {deployment.cluster.name:<9} #{deployment.pk:<4} {deployment.name:<17} "
                f"{deployment.status}{preempted}"
            )

    def _print_sign_in(self) -> None:
        self.stdout.write(
            "\nSign in at http://127.0.0.1:8000/login/ (start the server with `make run`), "
            f'password "{PASSWORD}", as one of:'
        )
        for role, username in USERS.items():
            self.stdout.write(f"  {username:<16} {role.label}")
        self.stdout.write(
            "The operators' admin is at /admin/; it needs a staff account: "
            "`python manage.py createsuperuser`."
        )
