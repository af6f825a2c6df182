"""The catalog: `manage.py runtime`, the services behind it, the admin, the label."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import UserFactory
from orgs.tests.factories import OrganizationFactory
from runtime.labels import installation_id
from runtime.models import Health, Runtime
from runtime.selectors import runtime_available

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("runtime", *args, stdout=out)
    return out.getvalue()


def test_add_list_and_remove_exactly_as_api_md_writes_them():
    first, second = OrganizationFactory(), OrganizationFactory()
    out = run(
        "add", "gpu-box", "--kind", "docker", "--endpoint", "unix:///var/run/docker.sock",
        "--capacity-cpu", "12.5", "--capacity-ram-mb", "65536", "--capacity-gpu", "2",
        "--organization", str(first.pk), "--organization", str(second.pk),
        "--option", "network=none", "--option", "pull=never",
    )  # fmt: skip
    assert "Added runtime gpu-box (docker, unix:///var/run/docker.sock)" in out
    runtime = Runtime.objects.get(name="gpu-box")
    assert (runtime.capacity_cpu, runtime.capacity_ram_mb, runtime.capacity_gpu) == (
        12_500,
        65_536,
        2,
    )
    assert runtime.options == {"network": "none", "pull": "never"}
    assert sorted(o.pk for o in runtime.organizations.all()) == sorted([first.pk, second.pk])
    assert runtime.status == Health.OK
    listed = run("list")
    assert "gpu-box\tdocker\tunix:///var/run/docker.sock\tok since" in listed
    assert "capacity: 12.5 CPU, 65536 MiB, 2 GPU" in listed
    assert run("remove", "gpu-box") == "Removed runtime gpu-box.\n"
    assert run("list") == "No runtimes: every cluster is manual.\n"


def test_tls_client_certificates_are_read_from_files(tmp_path):
    for name in ("ca", "cert", "key"):
        (tmp_path / f"{name}.pem").write_text(f"-----BEGIN {name}-----\n")
    run(
        "add", "remote", "--kind", "docker", "--endpoint", "tcp://engine.example:2376",
        "--tls-ca", str(tmp_path / "ca.pem"), "--tls-cert", str(tmp_path / "cert.pem"),
        "--tls-key", str(tmp_path / "key.pem"),
    )  # fmt: skip
    assert Runtime.objects.get(name="remote").credentials == {
        "ca_cert": "-----BEGIN ca-----\n",
        "client_cert": "-----BEGIN cert-----\n",
        "client_key": "-----BEGIN key-----\n",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad Name", "--kind", "docker", "--endpoint", "x"], "Lowercase letters"),
        (
            ["s", "--kind", "slurm", "--endpoint", "/etc/slurm.conf", "--option", "container=oci"],
            "container=none only",
        ),
        (["d", "--kind", "docker", "--endpoint", " "], "endpoint"),
        (["d", "--kind", "docker", "--endpoint", "x", "--capacity-cpu", "2"], "all three"),
        (["d", "--kind", "docker", "--endpoint", "x", "--option", "novalue"], "KEY=VALUE"),
        (["d", "--kind", "docker", "--endpoint", "x", "--organization", "999999"], "999999"),
        (
            [
                "d",
                "--kind",
                "docker",
                "--endpoint",
                "x",
                "--capacity-cpu",
                "0.0001",
                "--capacity-ram-mb",
                "1",
                "--capacity-gpu",
                "0",
            ],
            "3 decimals",
        ),
    ],
)
def test_bad_input_is_a_clear_error(args, message):
    with pytest.raises(CommandError, match=message):
        run("add", *args)
    assert not Runtime.objects.exists()


def test_a_name_is_taken_once():
    run("add", "one", "--kind", "libvirt", "--endpoint", "test:///default")
    with pytest.raises(CommandError, match="exists"):
        run("add", "one", "--kind", "libvirt", "--endpoint", "test:///default")


def test_removing_an_unknown_runtime_says_so():
    with pytest.raises(CommandError, match="No runtime named 'ghost'"):
        run("remove", "ghost")


def test_check_records_what_the_engine_answers(settings):
    settings.RUNTIME_RETRY_WAIT_SECONDS = 0.01
    run("add", "local", "--kind", "libvirt", "--endpoint", "test:///default")
    assert run("check", "local") == "local: ok\n"
    run("add", "gone", "--kind", "docker", "--endpoint", "unix:///nonexistent/docker.sock")
    with pytest.raises(CommandError, match="gone: unreachable"):
        run("check", "gone")
    assert Runtime.objects.get(name="gone").status == Health.UNREACHABLE


def test_availability_follows_the_organizations():
    mine, other = OrganizationFactory(), OrganizationFactory()
    run("add", "everyone", "--kind", "libvirt", "--endpoint", "test:///default")
    run("add", "mine", "--kind", "libvirt", "--endpoint", "test:///default",
        "--organization", str(mine.pk))  # fmt: skip
    assert runtime_available(name="everyone", organization_id=other.pk) is not None
    assert runtime_available(name="mine", organization_id=mine.pk) is not None
    assert runtime_available(name="mine", organization_id=other.pk) is None
    assert runtime_available(name="nothing", organization_id=mine.pk) is None


def test_the_installation_id_is_made_once_and_kept(settings):
    settings.HYPERVISOR_INSTALLATION_ID = ""
    first = installation_id()
    assert first and installation_id() == first
    settings.HYPERVISOR_INSTALLATION_ID = "site-a"
    assert installation_id() == "site-a"


@pytest.fixture
def operator() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_admin_adds_through_the_service_and_never_shows_credentials(operator):
    organization = OrganizationFactory()
    response = operator.post(
        reverse("admin:runtime_runtime_add"),
        {
            "name": "admin-made",
            "kind": "docker",
            "endpoint": "tcp://engine.example:2376",
            "options": '{"network": "none"}',
            "capacity_cores": "8",
            "capacity_ram_mb": "16384",
            "capacity_gpu": "1",
            "organizations_field": [organization.pk],
            "tls_cert": "-----BEGIN CERTIFICATE-----public",
            "tls_key": "-----BEGIN PRIVATE KEY-----secret",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    runtime = Runtime.objects.get(name="admin-made")
    assert runtime.capacity_cpu == 8000
    assert runtime.credentials == {
        "client_cert": "-----BEGIN CERTIFICATE-----public",
        "client_key": "-----BEGIN PRIVATE KEY-----secret",
    }
    assert list(runtime.organizations.all()) == [organization]
    page = operator.get(reverse("admin:runtime_runtime_change", args=[runtime.pk]))
    assert page.status_code == 200
    assert b"secret" not in page.content
    assert b"tcp://engine.example:2376" in page.content


def test_the_admin_refuses_half_a_capacity(operator):
    response = operator.post(
        reverse("admin:runtime_runtime_add"),
        {"name": "half", "kind": "docker", "endpoint": "x", "options": "{}", "capacity_gpu": "1"},
    )
    assert response.status_code == 200
    assert b"all three dimensions" in response.content
    assert not Runtime.objects.exists()


def test_the_admin_is_for_staff_only():
    client = Client()
    client.force_login(UserFactory())
    response = client.get(reverse("admin:runtime_runtime_changelist"))
    assert response.status_code == 302  # to the admin's login
