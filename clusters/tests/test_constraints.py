"""The database's own capacity guard: every CHECK constraint of the cluster, in every
dimension, refuses what it exists to refuse (`clusters.models._dimension_constraints`).

Writes go through `QuerySet.update()`, under the model and the services: this is the
last line of defence a bug in the planner or a service would meet.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from clusters.models import Cluster
from clusters.services import CapacityError
from clusters.tests.factories import ClusterFactory
from hypervisor.exceptions import exception_handler

pytestmark = pytest.mark.django_db

DIMENSIONS = ["cpu", "ram_mb", "gpu"]


def _refused_by(cluster: Cluster, **values: int) -> str:
    """Apply `values` in SQL; return the name of the constraint that refused them."""
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        Cluster.objects.filter(pk=cluster.pk).update(**values)
    return raised.value.__cause__.diag.constraint_name


@pytest.mark.parametrize("dim", DIMENSIONS)
def test_allocated_above_capacity_is_refused_in_each_dimension(dim):
    cluster = ClusterFactory(capacity_cpu=4000, capacity_ram_mb=4096, capacity_gpu=2)
    capacity = getattr(cluster, f"capacity_{dim}")

    assert _refused_by(cluster, **{f"allocated_{dim}": capacity + 1}) == (
        f"cluster_{dim}_alloc_le_cap"
    )
    # Exactly full is allowed: the guard is `<=`, not `<`.
    Cluster.objects.filter(pk=cluster.pk).update(**{f"allocated_{dim}": capacity})


@pytest.mark.parametrize("dim", DIMENSIONS)
def test_capacity_shrunk_below_allocated_is_refused_in_each_dimension(dim):
    cluster = ClusterFactory(capacity_cpu=4000, capacity_ram_mb=4096, capacity_gpu=2)
    Cluster.objects.filter(pk=cluster.pk).update(**{f"allocated_{dim}": 2})

    assert _refused_by(cluster, **{f"capacity_{dim}": 1}) == f"cluster_{dim}_alloc_le_cap"


@pytest.mark.parametrize("dim", DIMENSIONS)
def test_negative_allocated_is_refused_in_each_dimension(dim):
    cluster = ClusterFactory()

    assert _refused_by(cluster, **{f"allocated_{dim}": -1}) == f"cluster_{dim}_alloc_ge_0"


@pytest.mark.parametrize("dim", DIMENSIONS)
def test_negative_capacity_is_refused_in_each_dimension(dim):
    cluster = ClusterFactory()

    # With allocated at 0, `allocated <= capacity` refuses it too: either guard may be
    # the one PostgreSQL reports, but the dimension's own guards must refuse it.
    refused = _refused_by(cluster, **{f"capacity_{dim}": -1})
    assert refused in {f"cluster_{dim}_cap_ge_0", f"cluster_{dim}_alloc_le_cap"}


def test_every_guard_is_in_the_database_with_its_condition():
    """`capacity >= 0` follows from the other two guards, so no write can show it
    missing: the catalogue can. Each guard, read back from PostgreSQL."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'clusters_cluster'::regclass AND contype = 'c'"
        )
        found = dict(cursor.fetchall())
    for dim in DIMENSIONS:
        assert found.get(f"cluster_{dim}_cap_ge_0") == f"CHECK ((capacity_{dim} >= 0))"
        assert found.get(f"cluster_{dim}_alloc_ge_0") == f"CHECK ((allocated_{dim} >= 0))"
        assert found.get(f"cluster_{dim}_alloc_le_cap") == (
            f"CHECK ((allocated_{dim} <= capacity_{dim}))"
        )


def test_a_database_refusal_is_told_apart_from_a_service_refusal_in_the_409():
    """Both are 409; `code` says which guard spoke (a test that accepts any 409 cannot
    tell a service that checked from one that left it to the database)."""
    cluster = ClusterFactory(capacity_gpu=2)
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        Cluster.objects.filter(pk=cluster.pk).update(allocated_gpu=3)

    by_database = exception_handler(raised.value, {})
    by_service = exception_handler(CapacityError("below what is allocated"), {})

    assert (by_database.status_code, by_service.status_code) == (409, 409)
    assert by_database.data["code"] == "constraint_violation"
    assert by_service.data == {
        "detail": "below what is allocated",
        "code": "capacity_below_allocated",
    }
