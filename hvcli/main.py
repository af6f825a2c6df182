"""The `hv` commands. Each one: parse, call the API, print a table or `--json`."""

from __future__ import annotations

import functools
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from hvcli import config, output
from hvcli.client import AUTH, Api, CliError
from hvcli.deploy import parse_cpu, read_spec, spec_from_flags

app = typer.Typer(
    name="hv",
    help="The hypervisor command line: organizations, clusters and deployments from a "
    "terminal or a script. Exit codes: 0 ok, 1 the API refused (4xx), 2 bad usage, "
    "3 not signed in or token rejected (401), 4 server error (5xx) or unreachable.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    add_completion=False,
)

Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts, not a table.")]
DeploymentId = Annotated[int, typer.Argument(help="The deployment's id.", min=1)]
DEPLOYMENT_FIELDS = [
    "id", "name", "status", "status_reason", "cluster", "organization", "image", "resources",
    "priority", "preemptible", "depends_on", "command", "env", "exit_code", "preemption_count",
    "created_by_username",
    "created_at", "queued_at", "started_at", "finished_at", "updated_at",
]  # fmt: skip
ENDED = frozenset({"completed", "failed", "cancelled"})
LIST_COLUMNS = [
    ("id", "ID"), ("name", "NAME"), ("cluster", "CLUSTER"), ("status", "STATUS"),
    ("priority", "PRIORITY"), ("resources", "REQUESTS"), ("created_by_username", "BY"),
    ("created_at", "CREATED"),
]  # fmt: skip


def command(name: str | None = None) -> Callable[[Callable], Callable]:
    """`app.command`, with a `CliError` reported on stderr and turned into its exit code."""

    def register(function: Callable) -> Callable:
        @functools.wraps(function)
        def run(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except CliError as error:
                output.stderr.print(f"error: {error.message}", markup=False)
                raise typer.Exit(error.exit_code) from None

        return app.command(name)(run)

    return register


@app.callback()
def root(
    ctx: typer.Context,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            "-s",
            help="The server's URL. Default: $HV_SERVER, else the one `hv login` saved, "
            f"else {config.DEFAULT_SERVER}.",
            show_default=False,
        ),
    ] = None,
) -> None:
    saved = config.load()
    ctx.obj = {"config": saved, "server": config.resolve_server(server, saved)}


def _api(ctx: typer.Context, *, signed_in: bool = True) -> Api:
    server = ctx.obj["server"]
    token = config.resolve_token(server, ctx.obj["config"])
    if signed_in and not token:
        raise CliError(f"not signed in to {server}: run `hv login` or set HV_TOKEN", AUTH)
    return Api(server, token)


# --- signing in --------------------------------------------------------------------------------


@command()
def login(
    ctx: typer.Context,
    username: Annotated[str, typer.Option(prompt=True, help="Your username.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, envvar="HV_PASSWORD", help="Or set HV_PASSWORD."
        ),
    ],
    name: Annotated[str, typer.Option(help="The token's name on the tokens page.")] = "",
    expires_in_days: Annotated[
        int, typer.Option(min=1, max=365, help="Days until the token expires.")
    ] = 90,
) -> None:
    """Sign in with a password and save a new API token (mode 0600) for later commands."""
    token_name = name or f"hv on {socket.gethostname()}"[:100]
    with _api(ctx, signed_in=False) as api:
        token = _password_login(api, username, password, token_name, expires_in_days)
    _save(ctx, token, username)


@command("use-token")
def use_token(
    ctx: typer.Context,
    token: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="A token from the tokens page.")
    ],
) -> None:
    """Save a token created on the web page (or by a script) for later commands."""
    server = ctx.obj["server"]
    with Api(server, token) as api:
        me = api.get("/auth/me")
    _save(ctx, {"token": token, "id": None}, me["username"])


def _password_login(api: Api, username: str, password: str, name: str, days: int) -> dict:
    """Session login (with the CSRF dance), create a token, end the session."""
    api.get("/auth/csrf")
    headers = {"Referer": api.server + "/"}  # Django checks it on HTTPS
    headers["X-CSRFToken"] = api.http.cookies.get("csrftoken", "")
    api.post("/auth/login", {"username": username, "password": password}, headers=headers)
    headers["X-CSRFToken"] = api.http.cookies.get("csrftoken", "")  # login rotates it
    token = api.post("/auth/tokens", {"name": name, "expires_in_days": days}, headers=headers)
    api.post("/auth/logout", headers=headers)
    return token


def _save(ctx: typer.Context, token: dict, username: str) -> None:
    saved = config.Config(
        server=ctx.obj["server"], token=token["token"], token_id=token["id"], username=username
    )
    path = config.save(saved)
    output.stderr.print(f"Signed in to {saved.server} as {username}; token saved in {path}.")


@command()
def logout(ctx: typer.Context) -> None:
    """Revoke the saved token on the server and forget it here."""
    saved = ctx.obj["config"]
    if saved.token and saved.token_id is not None:
        with Api(saved.server, saved.token) as api:
            try:
                api.delete(f"/auth/tokens/{saved.token_id}")
            except CliError as error:
                if error.exit_code != AUTH:  # already revoked or expired: nothing to undo
                    raise
    forgotten = config.forget()
    output.stderr.print("Signed out." if forgotten else "Was not signed in.")


@command()
def whoami(ctx: typer.Context, as_json: Json = False) -> None:
    """Who the saved token signs in as, and their organizations."""
    with _api(ctx) as api:
        me = api.get("/auth/me")
    if as_json:
        output.emit_json(me)
        return
    output.stdout.print(f"{me['username']} on {ctx.obj['server']}")
    output.table(
        me["memberships"],
        [("organization", "ORG"), ("organization_name", "NAME"), ("role", "ROLE")],
        empty="No organizations yet.",
    )


# --- organizations and clusters -----------------------------------------------------------------


@command()
def orgs(ctx: typer.Context, as_json: Json = False) -> None:
    """Your organizations, with your role in each."""
    with _api(ctx) as api:
        rows = list(api.pages("/organizations"))
    if as_json:
        output.emit_json(rows)
        return
    columns = [("id", "ID"), ("name", "NAME"), ("role", "ROLE"), ("invite_code", "INVITE")]
    output.table(rows, columns, empty="No organizations.")


@command()
def clusters(
    ctx: typer.Context,
    org: Annotated[int | None, typer.Option(help="Only this organization's.", min=1)] = None,
    as_json: Json = False,
) -> None:
    """The clusters of your organizations, with capacity and what is allocated."""
    params = {"organization": org} if org else None
    with _api(ctx) as api:
        rows = list(api.pages("/clusters", params))
    if as_json:
        output.emit_json(rows)
        return
    columns = [
        ("id", "ID"), ("organization", "ORG"), ("name", "NAME"), ("policy", "POLICY"),
        ("capacity", "CAPACITY"), ("available", "AVAILABLE"), ("running_count", "RUNNING"),
        ("waiting_count", "WAITING"),
    ]  # fmt: skip
    output.table(rows, columns, empty="No clusters.")


@command()
def queue(
    ctx: typer.Context,
    cluster: Annotated[int, typer.Argument(help="The cluster's id.", min=1)],
    offset: Annotated[int, typer.Option(min=0, help="Skip this many.")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=5000, help="Show at most this many.")] = 500,
    as_json: Json = False,
) -> None:
    """What waits on a cluster, in the order the scheduler will consider it, and why."""
    with _api(ctx) as api:
        response = api.request(
            "GET", f"/clusters/{cluster}/queue", params={"offset": offset, "limit": limit}
        )
    items = response.json()
    if as_json:
        output.emit_json(items)
        return
    rows = [
        {**item["deployment"], "position": item["position"], "reason": item["reason"]}
        for item in items
    ]
    columns = [
        ("position", "#"), ("id", "ID"), ("name", "NAME"), ("priority", "PRIORITY"),
        ("status", "STATUS"), ("resources", "REQUESTS"), ("reason", "WHY IT WAITS"),
    ]  # fmt: skip
    output.table(rows, columns, empty="Nothing waits.")
    total = response.headers.get("X-Total-Count")
    if total is not None and int(total) > len(items):
        output.stderr.print(f"{len(items)} of {total} shown; use --offset and --limit.")


# --- deployments ---------------------------------------------------------------------------------


def _show(deployment: dict, as_json: bool) -> None:
    if as_json:
        output.emit_json(deployment)
        return
    shown = dict(deployment)
    shown["depends_on"] = ", ".join(
        f"#{d['deployment']} {d['condition']} (now {d['status']})"
        for d in deployment.get("depends_on") or []
    )
    output.fields(shown, DEPLOYMENT_FIELDS)


@command()
def deploy(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", "-f", help="A YAML or JSON object with the API's fields ('-': stdin)."
        ),
    ] = None,
    cluster: Annotated[int | None, typer.Option(help="The cluster's id.", min=1)] = None,
    name: Annotated[str | None, typer.Option(help="A name for people.")] = None,
    image: Annotated[str | None, typer.Option(help="A Docker/OCI image reference.")] = None,
    cpu: Annotated[
        str | None, typer.Option(help="Cores, up to 3 decimals (0.25).", show_default=False)
    ] = None,
    ram_mb: Annotated[int | None, typer.Option(help="RAM in MiB.", min=0)] = None,
    gpu: Annotated[int | None, typer.Option(help="Whole GPUs (default 0).", min=0)] = None,
    priority: Annotated[
        int | None, typer.Option(help="0 to 1,000,000; higher runs first.", min=0)
    ] = None,
    preemptible: Annotated[
        bool | None,
        typer.Option(
            "--preemptible/--no-preemptible",
            help="May be stopped for higher-priority work (server default: yes).",
            show_default=False,
        ),
    ] = None,
    depends_on: Annotated[
        list[str] | None,
        typer.Option(help="ID or ID:CONDITION (succeeded, finished, failed); repeat for several."),
    ] = None,
    command: Annotated[
        list[str] | None,
        typer.Option(
            "--command",
            help="One word of the command that replaces the image's; repeat in order "
            "(--command python --command train.py).",
        ),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(help="NAME=VALUE, an environment variable; repeat for several."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Submit a deployment, from flags, a file, or a file with flags laid over it."""
    flags = {
        "cluster": cluster, "name": name, "image": image,
        "cpu": None if cpu is None else parse_cpu(cpu), "ram_mb": ram_mb, "gpu": gpu,
        "priority": priority, "preemptible": preemptible, "depends_on": depends_on,
        "command": command, "env": env,
    }  # fmt: skip
    spec = spec_from_flags(read_spec(file) if file else {}, flags)
    with _api(ctx) as api:
        created = api.post("/deployments", spec)
    if not as_json:
        output.stderr.print(f"Submitted deployment {created['id']}: {created['status']}.")
    _show(created, as_json)


@command("ls")
def list_deployments(
    ctx: typer.Context,
    cluster: Annotated[int | None, typer.Option(help="Only this cluster's.", min=1)] = None,
    org: Annotated[int | None, typer.Option(help="Only this organization's.", min=1)] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(help="Only these statuses: repeat it, or separate them with commas."),
    ] = None,
    search: Annotated[str | None, typer.Option(help="Text in the name or the image.")] = None,
    priority_min: Annotated[int | None, typer.Option(help="Priority at least.")] = None,
    priority_max: Annotated[int | None, typer.Option(help="Priority at most.")] = None,
    created_by: Annotated[str | None, typer.Option(help="Submitted by this username.")] = None,
    ordering: Annotated[
        str | None,
        typer.Option(
            "--sort",
            help="Fields separated by commas, '-' for descending: id, name, image, cluster, "
            "status, priority, created_at, queued_at, started_at, finished_at, updated_at.",
        ),
    ] = None,
    page_size: Annotated[int, typer.Option(min=1, max=500, help="Rows per request.")] = 50,
    every: Annotated[bool, typer.Option("--all", help="Every page, not only the first.")] = False,
    as_json: Json = False,
) -> None:
    """List deployments of your organizations, filtered and sorted as the API allows."""
    params = {
        "cluster": cluster, "organization": org, "search": search,
        "status": ",".join(status) if status else None,
        "priority_min": priority_min, "priority_max": priority_max,
        "created_by_username": created_by, "ordering": ordering, "page_size": page_size,
    }  # fmt: skip
    params = {key: value for key, value in params.items() if value is not None}
    with _api(ctx) as api:
        rows = list(api.pages("/deployments", params, every=every))
    if as_json:
        output.emit_json(rows)
        return
    output.table(rows, LIST_COLUMNS, empty="No deployments match.")
    if not every and len(rows) == page_size:
        output.stderr.print(f"First {page_size} shown; --all for every one.")


@command()
def show(ctx: typer.Context, deployment: DeploymentId, as_json: Json = False) -> None:
    """One deployment: its fields, status and why."""
    with _api(ctx) as api:
        _show(api.get(f"/deployments/{deployment}"), as_json)


@command()
def events(ctx: typer.Context, deployment: DeploymentId, as_json: Json = False) -> None:
    """Every status change of a deployment, oldest first, with reason and actor."""
    with _api(ctx) as api:
        rows = list(api.pages(f"/deployments/{deployment}/events"))
    if as_json:
        output.emit_json(rows)
        return
    columns = [
        ("at", "AT"), ("from_status", "FROM"), ("to_status", "TO"), ("reason", "REASON"),
        ("actor", "BY"),
    ]  # fmt: skip
    output.table(rows, columns, empty="No events.")


@command()
def logs(
    ctx: typer.Context,
    deployment: DeploymentId,
    tail: Annotated[int, typer.Option(min=1, max=10_000, help="The last this many lines.")] = 200,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until it ends.")
    ] = False,
    as_json: Json = False,
) -> None:
    """A deployment's output: its last lines (read from the runtime, or kept after it ended)."""
    with _api(ctx) as api:
        if follow:
            follow_logs(api, deployment, tail=tail, as_json=as_json)
            return
        answer = api.get(f"/deployments/{deployment}/logs", {"tail": tail})
    if as_json:
        output.emit_json(answer)
    else:
        _print_lines(answer["lines"], as_json=False)


def follow_logs(api: Api, deployment: int, *, tail: int, as_json: bool) -> None:
    """Poll the logs (every `HV_FOLLOW_SECONDS`, default 2) and print what is new, until
    the deployment has ended; then print the last of it and stop."""
    interval = float(os.environ.get("HV_FOLLOW_SECONDS", "2"))
    shown: list[str] = []
    while True:
        ended = api.get(f"/deployments/{deployment}")["status"] in ENDED
        lines = api.get(f"/deployments/{deployment}/logs", {"tail": tail})["lines"]
        _print_lines(new_lines(shown, lines), as_json=as_json)
        shown = lines
        if ended:
            return
        time.sleep(interval)


def new_lines(shown: list[str], lines: list[str]) -> list[str]:
    """The lines of `lines` after its longest beginning that ends `shown` (two windows
    of the same output, the second read later)."""
    for overlap in range(min(len(shown), len(lines)), 0, -1):
        if shown[-overlap:] == lines[:overlap]:
            return lines[overlap:]
    return lines


def _print_lines(lines: list[str], *, as_json: bool) -> None:
    for line in lines:
        # With --json, one JSON string a line (scripts can follow it); else the text.
        print(json.dumps(line, ensure_ascii=False) if as_json else line, flush=True)


def _act(ctx: typer.Context, deployment: int, verb: str, as_json: bool) -> None:
    with _api(ctx) as api:
        result = api.post(f"/deployments/{deployment}/{verb}")
    if as_json:
        output.emit_json(result)
    else:
        output.stdout.print(f"Deployment {result['id']} is {result['status']}.")


@command()
def cancel(ctx: typer.Context, deployment: DeploymentId, as_json: Json = False) -> None:
    """Cancel a deployment that has not ended (pending, queued, starting or running)."""
    _act(ctx, deployment, "cancel", as_json)


@command()
def complete(ctx: typer.Context, deployment: DeploymentId, as_json: Json = False) -> None:
    """Report a starting or running deployment as completed."""
    _act(ctx, deployment, "complete", as_json)


@command()
def fail(ctx: typer.Context, deployment: DeploymentId, as_json: Json = False) -> None:
    """Report a starting or running deployment as failed."""
    _act(ctx, deployment, "fail", as_json)


def main() -> None:
    """The console script `hv`."""
    app()
