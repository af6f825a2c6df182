"""`hv` end to end: real HTTP to a live server (pytest-django's, on a loopback port) with
the real database behind it; the commands run in-process through typer's runner, and the
installed console script once as a subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accounts.models import ApiToken
from accounts.services import token_create
from accounts.tests.factories import PASSWORD
from clusters.tests.factories import ClusterFactory
from deployments.models import Deployment, DeploymentLog
from deployments.tests.factories import DeploymentFactory
from hvcli.main import app, new_lines
from runtime.services import RuntimeSpec, runtime_add

IMAGE = "registry.example.com:5000/team/trainer:1.4"


@pytest.fixture
def cluster(organization):
    return ClusterFactory(organization=organization, name="gpu-west", capacity_cpu=4000)


@pytest.fixture
def hv(live_server, tmp_path):
    """`hv(*args)` runs a command against the live server with a private config file."""
    environment = {
        "HV_CONFIG": str(tmp_path / "hv" / "config.json"),
        "HV_SERVER": live_server.url,
        "HV_TOKEN": "",
        "COLUMNS": "200",
    }

    def run(*args: str, input: str | None = None, **env: str):
        return CliRunner().invoke(app, list(args), env={**environment, **env}, input=input)

    run.config = tmp_path / "hv" / "config.json"
    return run


def _json(result):
    assert result.exit_code == 0, (result.exit_code, result.output)
    return json.loads(result.stdout)


@pytest.fixture
def signed_in(hv, developer):
    result = hv("login", "--username", developer.username, "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    return hv


def test_login_saves_a_token_readable_by_its_owner_only(hv, developer):
    result = hv("login", "--username", developer.username, input=f"{PASSWORD}\n")

    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(hv.config.stat().st_mode) == 0o600
    assert stat.S_IMODE(hv.config.parent.stat().st_mode) == 0o700
    saved = json.loads(hv.config.read_text())
    token = ApiToken.objects.get(user=developer)
    assert saved["token_id"] == token.pk and saved["token"].startswith("hv_")
    assert _json(hv("whoami", "--json"))["username"] == developer.username


def test_a_wrong_password_is_refused_and_saves_nothing(hv, developer):
    result = hv("login", "--username", developer.username, "--password", "wrong")

    assert result.exit_code == 1
    assert "credentials" in result.output
    assert not hv.config.exists()


def test_orgs_and_clusters(signed_in, organization, cluster):
    orgs = _json(signed_in("orgs", "--json"))
    clusters = _json(signed_in("clusters", "--org", str(organization.pk), "--json"))
    table = signed_in("clusters")

    assert [(o["id"], o["role"]) for o in orgs] == [(organization.pk, "developer")]
    assert [c["name"] for c in clusters] == ["gpu-west"]
    assert "gpu-west" in table.stdout and "4.0 CPU" in table.stdout


def test_deploy_with_flags_then_show_events_complete(signed_in, cluster):
    created = _json(
        signed_in(
            "deploy", "--cluster", str(cluster.pk), "--name", "train", "--image", IMAGE,
            "--cpu", "0.25", "--ram-mb", "512", "--priority", "7", "--no-preemptible", "--json",
        )
    )  # fmt: skip
    deployment = Deployment.objects.get(pk=created["id"])

    assert (deployment.cpu, deployment.ram_mb, deployment.gpu) == (250, 512, 0)
    assert (deployment.priority, deployment.preemptible) == (7, False)
    assert created["status"] == "running"  # the embedded pass ran before the answer
    shown = signed_in("show", str(deployment.pk))
    assert "train" in shown.stdout and "0.25 CPU" in shown.stdout
    assert _json(signed_in("complete", str(deployment.pk), "--json"))["status"] == "completed"
    events = _json(signed_in("events", str(deployment.pk), "--json"))
    assert [e["to_status"] for e in events] == ["queued", "running", "completed"]
    again = signed_in("complete", str(deployment.pk))
    assert again.exit_code == 1 and "409" in again.output


def test_deploy_with_a_command_and_environment(signed_in, cluster):
    created = _json(
        signed_in(
            "deploy", "--cluster", str(cluster.pk), "--name", "cmd", "--image", IMAGE,
            "--cpu", "1", "--ram-mb", "64", "--command", "python", "--command", "train.py",
            "--env", "EPOCHS=10", "--env", "OPTS=a=b", "--env", "EMPTY=", "--json",
        )
    )  # fmt: skip
    deployment = Deployment.objects.get(pk=created["id"])

    assert deployment.command == ["python", "train.py"]
    assert deployment.env == {"EPOCHS": "10", "OPTS": "a=b", "EMPTY": ""}
    assert signed_in("deploy", "--cluster", "1", "--env", "NOEQUALS").exit_code == 2


@pytest.fixture
def finished_with_output(cluster):
    """A completed deployment of a Docker cluster, whose last lines were kept."""
    cluster.runtime = runtime_add(
        spec=RuntimeSpec(
            name="dk", kind="docker", endpoint="unix:///nonexistent", options={}, credentials={}
        )
    )
    cluster.save()
    deployment = DeploymentFactory(cluster=cluster, status="completed", exit_code=0)
    DeploymentLog.objects.create(
        deployment=deployment, lines=[f"line {i}" for i in range(300)], source="docker"
    )
    return deployment


def test_logs_tail_and_json(signed_in, finished_with_output):
    pk = str(finished_with_output.pk)

    text = signed_in("logs", pk, "--tail", "2")
    answer = _json(signed_in("logs", pk, "--json"))

    assert text.exit_code == 0 and text.stdout == "line 298\nline 299\n"
    assert (len(answer["lines"]), answer["truncated"], answer["source"]) == (200, True, "docker")


def test_logs_follow_stops_when_the_deployment_has_ended(signed_in, finished_with_output):
    result = signed_in("logs", str(finished_with_output.pk), "-f", "--tail", "3")

    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["line 297", "line 298", "line 299"]


def test_logs_of_a_manual_deployment_are_empty(signed_in, cluster):
    deployment = DeploymentFactory(cluster=cluster)

    assert _json(signed_in("logs", str(deployment.pk), "--json"))["source"] == "manual"
    assert signed_in("logs", str(deployment.pk)).stdout == ""


def test_following_prints_each_line_once():
    assert new_lines([], ["a", "b"]) == ["a", "b"]
    assert new_lines(["a", "b"], ["a", "b", "c"]) == ["c"]
    assert new_lines(["a", "b", "c"], ["b", "c", "d", "e"]) == ["d", "e"]  # the window moved
    assert new_lines(["x", "x"], ["x", "x", "x"]) == ["x"]
    assert new_lines(["a"], ["z"]) == ["z"]  # no overlap: all of it is new
    assert new_lines(["a", "b"], ["a", "b"]) == []


def test_deploy_from_a_yaml_file_with_flags_over_it(signed_in, cluster, tmp_path):
    first = DeploymentFactory(cluster=cluster)
    spec = tmp_path / "job.yaml"
    spec.write_text(
        f"cluster: {cluster.pk}\nname: from-file\nimage: {IMAGE}\n"
        "resources: {cpu: 1, ram_mb: 256}\npriority: 3\n"
    )

    created = _json(
        signed_in("deploy", "-f", str(spec), "--priority", "9", "--depends-on",
                  f"{first.pk}:finished", "--json")
    )  # fmt: skip

    assert (created["name"], created["priority"], created["status"]) == ("from-file", 9, "pending")
    assert created["depends_on"][0]["condition"] == "finished"


def test_deploy_from_json_on_stdin(signed_in, cluster):
    body = {
        "cluster": cluster.pk,
        "name": "piped",
        "image": IMAGE,
        "resources": {"cpu": 1, "ram_mb": 1, "gpu": 0},
    }

    created = _json(signed_in("deploy", "-f", "-", "--json", input=json.dumps(body)))

    assert created["name"] == "piped"


def test_ls_passes_the_lists_filters(signed_in, cluster, developer):
    high = DeploymentFactory(cluster=cluster, name="etl-high", priority=50, created_by=developer)
    DeploymentFactory(cluster=cluster, name="etl-low", priority=1, created_by=developer)
    DeploymentFactory(cluster=cluster, name="report", priority=60)

    def names(*args: str) -> list[str]:
        return [d["name"] for d in _json(signed_in("ls", "--json", *args))]

    assert names("--search", "etl", "--priority-min", "10") == ["etl-high"]
    assert names("--sort", "-priority") == ["report", "etl-high", "etl-low"]
    assert names("--created-by", developer.username, "--sort", "name") == ["etl-high", "etl-low"]
    assert names("--status", "queued,running", "--cluster", str(cluster.pk)) == names()
    assert names("--status", "completed") == []
    assert names("--page-size", "1") == ["etl-high"]
    assert names("--page-size", "1", "--all") == ["etl-high", "etl-low", "report"]
    table = signed_in("ls", "--sort", "-priority")
    assert table.stdout.index("report") < table.stdout.index("etl-low")
    assert str(high.pk) in table.stdout
    refused = signed_in("ls", "--status", "sleeping")
    assert refused.exit_code == 1 and "status" in refused.output


def test_queue_and_cancel(signed_in, cluster):
    waiting = [
        _json(signed_in("deploy", "--cluster", str(cluster.pk), "--name", f"big-{i}",
                        "--image", IMAGE, "--cpu", "3", "--ram-mb", "1", "--json"))
        for i in range(2)
    ]  # fmt: skip

    queue = _json(signed_in("queue", str(cluster.pk), "--json"))
    table = signed_in("queue", str(cluster.pk))
    cancelled = _json(signed_in("cancel", str(waiting[1]["id"]), "--json"))

    assert [item["deployment"]["id"] for item in queue] == [waiting[1]["id"]]
    assert "WHY IT WAITS" in table.stdout and "big-1" in table.stdout
    assert cancelled["status"] == "cancelled"
    assert _json(signed_in("fail", str(waiting[0]["id"]), "--json"))["status"] == "failed"


def test_exit_codes_scripts_rely_on(hv, signed_in, live_server, outsider):
    foreign = DeploymentFactory(cluster=ClusterFactory(), created_by=outsider)

    assert signed_in("show", str(foreign.pk)).exit_code == 1  # 404: not ours
    assert signed_in("show", "not-a-number").exit_code == 2
    assert signed_in("ls", "--page-size", "0").exit_code == 2
    assert signed_in("deploy", "--name", "x").exit_code == 2
    assert hv("orgs", HV_TOKEN="hv_revoked-or-made-up").exit_code == 3
    assert hv("orgs", HV_CONFIG=str(hv.config) + ".none").exit_code == 3
    assert hv("orgs", HV_SERVER="http://127.0.0.1:9", HV_TOKEN="x").exit_code == 4


def test_a_saved_token_is_never_sent_to_another_server(signed_in, live_server):
    other = live_server.url.replace("localhost", "127.0.0.1")

    result = signed_in("--server", other, "orgs")

    assert result.exit_code == 3 and "not signed in" in result.output


def test_logout_revokes_the_token_on_the_server(signed_in, developer):
    token = json.loads(signed_in.config.read_text())["token"]

    result = signed_in("logout")

    assert result.exit_code == 0
    assert not signed_in.config.exists()
    assert not ApiToken.objects.filter(user=developer).exists()
    assert signed_in("orgs", HV_TOKEN=token).exit_code == 3


def test_use_token_saves_a_token_made_elsewhere(hv, developer):
    _token, secret = token_create(user=developer, name="from the page")

    result = hv("use-token", "--token", secret)

    assert result.exit_code == 0, result.output
    assert json.loads(hv.config.read_text())["token"] == secret
    assert _json(hv("whoami", "--json"))["username"] == developer.username


COMMANDS = ["login", "use-token", "logout", "whoami", "orgs", "clusters", "queue", "deploy",
            "ls", "show", "events", "logs", "cancel", "complete", "fail"]  # fmt: skip


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_help_everywhere(command):
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0
    assert "Usage: " in result.output


def test_the_installed_console_script(live_server, developer):
    hv = Path(sys.executable).parent / "hv"
    assert hv.exists(), "`make run`/`make test` install the project: pip install -e ."
    _token, secret = token_create(user=developer, name="subprocess")
    env = {**os.environ, "HV_SERVER": live_server.url, "HV_TOKEN": secret}

    ok = subprocess.run([hv, "whoami", "--json"], env=env, capture_output=True, timeout=60)
    refused = subprocess.run(
        [hv, "show", "999999"], env=env, capture_output=True, text=True, timeout=60
    )

    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["username"] == developer.username
    assert refused.returncode == 1 and "404" in refused.stderr


def test_the_cli_imports_nothing_from_the_server():
    """hvcli talks HTTP only: none of its modules imports Django or the project's apps."""
    package = Path(__file__).resolve().parents[1]
    server = {"django", "rest_framework", "accounts", "orgs", "clusters", "deployments",
              "scheduler", "web", "ops", "hypervisor", "runtime", "planner"}  # fmt: skip
    code = (
        "import sys, hvcli.main; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(server)!r})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=package.parent, capture_output=True, text=True
    )
    assert loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr
