import factory
from django.utils import timezone

from accounts.tests.factories import UserFactory
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
