"""The resource registry: the vector arithmetic works for any dimensions (a throwaway
one here), and every place that is written per dimension derives from the registry."""

from __future__ import annotations

import pytest

from clusters.api.serializers import ResourcesSerializer
from clusters.models import Cluster
from clusters.tests.factories import ClusterFactory
from clusters.usage import cluster_usage
from deployments.models import Deployment
from hypervisor.resources import DIMENSIONS, Dimension, Resources, vector_class
from planner.reasons import format_amount

GPU_MEMORY = Dimension(
    name="gpu_mem_mb",
    api_field="gpu_mem_mb",
    label="GPU memory",
    unit="MiB",
    api_help="MiB of GPU memory.",
    scale=1,
    decimals=0,
    maximum=10_000_000,
    big=True,
    stored_help="",
    exact=lambda v: f"{v} MiB of GPU memory",
    readable=str,
    in_line=lambda v: f"{v} MiB GPU memory",
    of_capacity=str,
)


def test_a_throwaway_dimension_gets_the_whole_arithmetic():
    Wide = vector_class((*DIMENSIONS, GPU_MEMORY))
    request, room = Wide(1000, 512, 1, 4096), Wide(2000, 1024, 1, 2048)
    assert (request + room).gpu_mem_mb == 6144
    assert (room - request).values() == (1000, 512, 0, -2048)
    assert not request.fits_in(room)
    assert request.shortfall(room) == Wide(gpu_mem_mb=2048)
    assert [d.name for d in request.lacking(room)] == ["gpu_mem_mb"]
    assert request.fields("capacity_")["capacity_gpu_mem_mb"] == 4096
    assert Wide.of(request) == request
    assert request.in_line().endswith("· 4096 MiB GPU memory")


@pytest.mark.parametrize("dimension", DIMENSIONS, ids=lambda d: d.name)
def test_every_dimension_flows_to_models_constraints_api_pages_and_reasons(db, dimension):
    name = dimension.name
    cluster_fields = {f.name for f in Cluster._meta.get_fields()}
    assert {f"capacity_{name}", f"allocated_{name}"} <= cluster_fields
    assert name in {f.name for f in Deployment._meta.get_fields()}
    constraints = {c.name for c in Cluster._meta.constraints}
    assert {f"cluster_{name}_cap_ge_0", f"cluster_{name}_alloc_ge_0"} <= constraints
    assert f"cluster_{name}_alloc_le_cap" in constraints

    field = ResourcesSerializer().fields[dimension.api_field]
    assert field.max_value * dimension.scale == dimension.maximum

    cluster = ClusterFactory()
    bars = {usage.dimension for usage in cluster_usage(cluster)}
    assert dimension.label in bars
    index = DIMENSIONS.index(dimension)
    assert format_amount(index, 7 * dimension.scale) == dimension.exact(7 * dimension.scale)
    assert dimension.in_line(cluster.capacity.values()[index]) in cluster.capacity.in_line()


def test_the_api_reads_and_writes_every_dimension_exactly():
    serializer = ResourcesSerializer(data={"cpu": "0.25", "ram_mb": 512, "gpu": 1})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == Resources(250, 512, 1)
    assert ResourcesSerializer(Resources(250, 512, 1)).data == {
        "cpu": 0.25,
        "ram_mb": 512,
        "gpu": 1,
    }
