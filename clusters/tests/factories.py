import factory

from clusters.models import Cluster
from orgs.tests.factories import OrganizationFactory


class ClusterFactory(factory.django.DjangoModelFactory):
    """A fifo cluster of 8 CPU, 32 GiB and 4 GPUs unless told otherwise."""

    class Meta:
        model = Cluster

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"cluster-{n}")
    # The example-based tests describe fifo's decisions; the state machine draws both.
    policy = "fifo"
    capacity_cpu = 8000
    capacity_ram_mb = 32768
    capacity_gpu = 4
