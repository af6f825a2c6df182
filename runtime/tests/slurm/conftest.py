"""One real Slurm per test session (munged, slurmctld, slurmd: see devtools/slurm.py), installed by
`make test` through devtools/scripts/ensure-slurm when missing. Each test gets it back with no job of
the previous test left and with its controller up."""

from __future__ import annotations

import os

import pytest

from devtools.slurm import SlurmCluster, missing_commands
from runtime.slurm.client import SlurmClient


@pytest.fixture(scope="session")
def slurm_cluster():
    missing = missing_commands()
    if missing:
        pytest.fail(
            f"Slurm is not installed (missing {', '.join(missing)}): run devtools/scripts/ensure-slurm "
            "or `make test`, which installs it"
        )
    if os.geteuid() != 0:
        pytest.fail("the Slurm tests start munged, slurmctld and slurmd and need root")
    cluster = SlurmCluster.create()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def slurm(slurm_cluster):
    """The session's cluster, emptied of jobs after the test (and its controller back up if
    the test stopped it)."""
    yield slurm_cluster
    if not slurm_cluster.controller_answers():
        slurm_cluster.start_controller()
    slurm_cluster.cancel_all()


@pytest.fixture
def client(slurm) -> SlurmClient:
    return SlurmClient(str(slurm.conf), timeout=30)
