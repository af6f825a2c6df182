"""Schemathesis against the live server's OpenAPI schema, with an authenticated session.

The fuzzer gets a member of an organization that has a cluster and a deployment, so
generated ids sometimes hit real objects; it sends the session cookie and the CSRF
header on every request, like a browser or script of a real user. Logging out is left
out (it would end the session for every later case).

Checks: no 5xx (`not_a_server_error`), and every answer as the schema says (status
code, content type, headers, body).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
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
        "--workers",
        "2",
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
