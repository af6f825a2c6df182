"""The rows a pass reads: its timestamps travel as seconds since the epoch
(deployments.locking); they must come back to the microsecond PostgreSQL stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from clusters.tests.factories import ClusterFactory
from deployments.locking import ROW_FIELDS, DeploymentRow, lock_schedulable
from deployments.models import Deployment, Status
from deployments.tests.factories import DeploymentFactory, RunningDeploymentFactory

# Microsecond instants from 1970 to 2200: PostgreSQL's precision, beyond any real queue.
instants = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@pytest.mark.django_db
@settings(max_examples=200, deadline=None)
@given(queued=instants, started=instants)
def test_a_pass_reads_the_timestamps_exactly_as_stored(queued, started):
    with transaction.atomic():
        cluster = ClusterFactory()
        waiting = DeploymentFactory(cluster=cluster, queued_at=queued)
        running = RunningDeploymentFactory(cluster=cluster, queued_at=queued, started_at=started)
        rows = {row.id: row for row in lock_schedulable(cluster.pk)}
        transaction.set_rollback(True)
    assert (rows[waiting.pk].queued_at, rows[waiting.pk].started_at) == (queued, None)
    assert (rows[running.pk].queued_at, rows[running.pk].started_at) == (queued, started)


@pytest.mark.django_db
def test_a_pass_reads_the_same_rows_as_the_model():
    cluster = ClusterFactory(capacity_cpu=8000)
    base = datetime(2026, 12, 6, 1, 2, 3, 456789, tzinfo=UTC)
    for index in range(20):
        DeploymentFactory(cluster=cluster, queued_at=base + timedelta(microseconds=index))
    RunningDeploymentFactory(cluster=cluster, started_at=base)
    DeploymentFactory(cluster=cluster, status=Status.COMPLETED)  # neither queued nor holding
    expected = [
        DeploymentRow.from_values(values)
        for values in Deployment.objects.filter(
            cluster=cluster, status__in=[Status.QUEUED, Status.RUNNING]
        )
        .order_by("pk")
        .values_list(*ROW_FIELDS)
    ]
    with transaction.atomic():
        assert lock_schedulable(cluster.pk) == expected
