"""Fixtures shared by every app's tests: three users (a member, a lesser member, an
outsider) and API clients logged in as each, against real PostgreSQL and Redis."""

from __future__ import annotations

import os

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from devtools.slurm import SlurmCluster, missing_commands
from hypervisor.tests import hypothesis_profiles
from orgs.models import Role
from orgs.selectors import forget_role_permissions
from orgs.tests.factories import MembershipFactory, OrganizationFactory
from runtime.gateway import forget_breakers
from runtime.tests.engines import DockerEngine

# Before any test module is imported: their @settings build on the loaded profile.
hypothesis_profiles.load()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters and RQ keys live in Redis, role permissions in the process:
    start every test from nothing."""
    cache.clear()
    forget_role_permissions()
    yield
    cache.clear()
    forget_role_permissions()


@pytest.fixture(autouse=True)
def _fresh_breakers():
    """Circuit breakers and engine connections are per process: none carries over."""
    forget_breakers()
    yield
    forget_breakers()


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory):
    """A real dockerd of this test session's own (runtime/tests/engines.py), with the
    busybox test image built; stopped, with its containers, at the end."""
    engine = DockerEngine(tmp_path_factory.mktemp("dockerd", numbered=True))
    engine.start()
    try:
        engine.build_test_image()
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def slurm_cluster():
    """A real Slurm of this test session's own (devtools/slurm.py: munged, slurmctld, one
    slurmd; `make test` installs them through devtools/scripts/ensure-slurm); stopped at
    the end with every leftover slurmstepd and the node's cgroups."""
    missing = missing_commands()
    if missing:
        pytest.fail(
            f"Slurm is not installed (missing {', '.join(missing)}): run "
            "devtools/scripts/ensure-slurm or `make test`, which installs it"
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
    """The session's Slurm, emptied of jobs after the test (and its controller back up if
    the test stopped it)."""
    yield slurm_cluster
    if not slurm_cluster.controller_answers():
        slurm_cluster.start_controller()
    slurm_cluster.cancel_all()


@pytest.fixture(autouse=True)
def _no_runtime_watcher(settings):
    """No background timer threads reconciling runtimes behind a test's back: tests that
    need a reconciliation ask for it (scheduler.lifecycle.reconcile_runtime)."""
    settings.RUNTIME_WATCH_SECONDS = 0


@pytest.fixture(autouse=True)
def _no_reasons_refresh(settings):
    """No delayed passes refreshing queue reasons behind a test's back (a timer thread
    without Redis): tests of the refresh turn it on."""
    settings.SCHEDULER_REASONS_SECONDS = 0


@pytest.fixture(autouse=True)
def _in_process_scheduling(request, settings):
    """Passes run in-process after commit (the embedded mode) unless a test is marked
    `rq`, which exercises the real queue and a real worker instead."""
    if request.node.get_closest_marker("rq") is None:
        settings.USE_RQ = False


@pytest.fixture
def organization(db):
    return OrganizationFactory()


def _member(organization, role: Role):
    return MembershipFactory(organization=organization, role=role).user


@pytest.fixture
def owner(organization):
    return _member(organization, Role.OWNER)


@pytest.fixture
def admin_user(organization):
    return _member(organization, Role.ADMIN)


@pytest.fixture
def developer(organization):
    return _member(organization, Role.DEVELOPER)


@pytest.fixture
def viewer(organization):
    return _member(organization, Role.VIEWER)


@pytest.fixture
def outsider(db):
    """A user with an organization of their own, but not ours."""
    return MembershipFactory(role=Role.OWNER).user


@pytest.fixture
def anon():
    return APIClient()


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def as_user():
    """`as_user(user)` gives an API client logged in as that user."""
    return client_for


@pytest.fixture
def user(db):
    return UserFactory()
