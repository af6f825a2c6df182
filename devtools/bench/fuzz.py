"""Schemathesis against the live server's OpenAPI schema, with an authenticated session.

The fuzzer gets a member of an organization that has a cluster and a deployment, so
generated ids sometimes hit real objects; it sends the session cookie and the CSRF
header on every request, like a browser or script of a real user. Logging out is left
out (it would end the session for every later case).

Checks: no 5xx (`not_a_server_error`), and every answer as the schema says (status
code, content type, headers, body). Then the hardening probes: the hostile requests of
issue 16's findings (an over-long `depends_on`, numbers for strings, inexact or
non-ASCII numbers, spoofing characters, an over-large body, huge ids), each answered
with its expected 4xx.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devtools.bench import load

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
EXCLUDE = r"/api/v1/auth/logout"


@dataclass
class FuzzResult:
    returncode: int
    output: str
    cases: int

    @property
    def passed(self) -> bool:
        return self.returncode == 0


def fuzz_user(base_url: str) -> load.Client:
    """A logged-in owner of an organization with one cluster and one deployment."""
    recorder = load.Recorder()
    org = load.set_up(base_url, clients=1, clusters=1, recorder=recorder)
    owner = org.owner
    body = {
        "cluster": org.cluster_ids[0],
        "name": "fuzz-target",
        "image": "python:3.11",
        "resources": {"cpu": 1, "ram_mb": 64, "gpu": 0},
    }
    owner.call("create", "POST", "/api/v1/deployments", body)
    return owner


def run_schemathesis(
    base_url: str,
    *,
    max_examples: int,
    seed: int = 1,
    max_time: int | None = None,
    report_dir: Path | None = None,
    extra: list[str] | None = None,
) -> FuzzResult:
    client = fuzz_user(base_url)
    cookies = "; ".join(f"{k}={v}" for k, v in client.session.cookies.items())
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base_url}/api/schema",
        "--url",
        base_url,
        "--checks",
        CHECKS,
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        # One worker: with two, hypothesis describes strategies (ast.parse) in two threads at
        # once, and CPython before 3.11.8 shares the AST recursion counter between threads
        # (gh-106905): the run crashes with "AST constructor recursion depth mismatch".
        "--workers",
        "1",
        "--exclude-path-regex",
        EXCLUDE,
        "--suppress-health-check",
        "all",
        "--header",
        f"Cookie: {cookies}",
        "--header",
        f"X-CSRFToken: {client.session.cookies['csrftoken']}",
        "--request-timeout",
        "30",
        *(["--max-time", str(max_time)] if max_time else []),
        *(["--report", "junit", "--report-dir", str(report_dir)] if report_dir else []),
        *(extra or []),
    ]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    output = done.stdout + done.stderr
    return FuzzResult(done.returncode, output, _cases(output))


def _cases(output: str) -> int:
    """The number of generated test cases schemathesis reports."""
    found = re.findall(r"(\d[\d,]*) generated", output)
    return sum(int(x.replace(",", "")) for x in found[-1:]) if found else 0


# --- the hardening probes (issue 16): each finding's hostile request, against the live
# stack; schemathesis's generators would rarely hit them. Each is (what, method, path,
# body as JSON text, the statuses that are right).
_DEPLOYMENT = (
    '{{"cluster": {cluster}, "name": {name}, "image": {image}, '
    '"resources": {{"cpu": {cpu}, "ram_mb": 64, "gpu": 0}}, "depends_on": {depends_on}}}'
)
HUGE_ID = "9223372036854775808"


def _deployment(cluster: int, **fields: str) -> str:
    values = {"name": '"probe"', "image": '"python:3.11"', "cpu": "1", "depends_on": "[]"}
    return _DEPLOYMENT.format(cluster=cluster, **{**values, **fields})


def hardening_probes(cluster: int, organization: int) -> list[tuple]:
    return [
        (
            "180,000 dependencies",
            "POST",
            "/api/v1/deployments",
            _deployment(cluster, depends_on="[" + ",".join(["1"] * 180_000) + "]"),
            {400},
        ),
        (
            "a number for the image",
            "POST",
            "/api/v1/deployments",
            _deployment(cluster, image="7"),
            {400},
        ),
        (
            "a number for the name",
            "POST",
            "/api/v1/deployments",
            _deployment(cluster, name="5"),
            {400},
        ),
        (
            "cpu 1e-999999999",
            "POST",
            "/api/v1/deployments",
            _deployment(cluster, cpu="1e-999999999"),
            {400},
        ),
        (
            "an Arabic-Indic digit",
            "POST",
            "/api/v1/deployments",
            _deployment(cluster, cpu='"\\u0661"'),
            {400},
        ),
        (
            "a right-to-left override in a name",
            "POST",
            "/api/v1/deployments",
            _deployment(cluster, name='"evil\\u202egnp.exe"'),
            {400},
        ),
        (
            "a control character in an organization name",
            "POST",
            "/api/v1/organizations",
            '{"name": "a\\u0007b"}',
            {400},
        ),
        (
            "a body over the upload limit",
            "POST",
            "/api/v1/organizations",
            '{"name": "' + "x" * 3_000_000 + '"}',
            {400},
        ),
        ("a huge id in a page path", "GET", f"/orgs/{HUGE_ID}/", None, {404}),
        (
            "a huge id in a member path",
            "PATCH",
            f"/api/v1/organizations/{organization}/members/{HUGE_ID}",
            '{"role": "viewer"}',
            {404},
        ),
    ]


@dataclass
class ProbeResult:
    what: str
    status: int
    seconds: float
    json: bool
    right: bool


def run_hardening_probes(base_url: str) -> list[ProbeResult]:
    """Send each probe as a member of an organization; right = an expected status, with a
    JSON body under /api/, and never a 5xx."""
    client = fuzz_user(base_url)
    me = client.call("me", "GET", "/api/v1/auth/me").json()
    organization = me["memberships"][0]["organization"]
    cluster = client.call("clusters", "GET", "/api/v1/clusters").json()["results"][0]["id"]
    results = []
    for what, method, path, body, expected in hardening_probes(cluster, organization):
        headers = {"Content-Type": "application/json"}
        if method != "GET":
            headers["X-CSRFToken"] = client.session.cookies["csrftoken"]
        began = time.perf_counter()
        response = client.session.request(
            method, base_url + path, data=body, headers=headers, timeout=60
        )
        seconds = time.perf_counter() - began
        is_json = response.headers.get("Content-Type", "").startswith("application/json")
        right = response.status_code in expected and (is_json or not path.startswith("/api/"))
        results.append(ProbeResult(what, response.status_code, seconds, is_json, right))
    return results
