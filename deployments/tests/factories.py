import factory
from django.db.models import F
from django.utils import timezone

from accounts.tests.factories import UserFactory
from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment, Status


class DeploymentFactory(factory.django.DjangoModelFactory):
    """A queued 1-CPU deployment. Rows only: it bypasses the services and the scheduler,
    so use it for fixtures of state, and the services for behaviour."""

    class Meta:
        model = Deployment

    cluster = factory.SubFactory(ClusterFactory)
    name = factory.Sequence(lambda n: f"job-{n}")
    image = "registry.example.com/team/trainer:1.0"
    cpu = 1000
    ram_mb = 1024
    gpu = 0
    priority = 0
    status = Status.QUEUED
    queued_at = factory.LazyFunction(timezone.now)
    created_by = factory.SubFactory(UserFactory)


class RunningDeploymentFactory(DeploymentFactory):
    """A running deployment, with its cluster's allocated counters grown by its request,
    as a scheduling pass would leave them (the database refuses an over-allocation)."""

    class Meta:
        skip_postgeneration_save = True

    status = Status.RUNNING
    started_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def allocate(deployment, create, extracted, **kwargs):
        if not create:
            return
        Cluster.objects.filter(pk=deployment.cluster_id).update(
            allocated_cpu=F("allocated_cpu") + deployment.cpu,
            allocated_ram_mb=F("allocated_ram_mb") + deployment.ram_mb,
            allocated_gpu=F("allocated_gpu") + deployment.gpu,
        )
        deployment.cluster.refresh_from_db()
