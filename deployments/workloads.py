"""A deployment as a runtime sees it: its workload's name, labels, command and env.

`command` and `env` are checked here, in the service layer, exactly as API.md writes
them: a command is a list of at most 64 strings of at most 4,096 characters; env an
object of at most 64 variables named `[A-Za-z_][A-Za-z0-9_]*` with string values of at
most 4,096 characters. A number where a string is expected is an error, never coerced;
NUL characters are refused (no engine takes them, and PostgreSQL's JSON cannot hold them).
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError

from deployments.models import Deployment
from runtime.backends.base import WorkloadSpec
from runtime.labels import INSTALLATION_LABEL, installation_id

DEPLOYMENT_LABEL = "io.hypervisor.deployment"
MAX_ITEMS = 64
MAX_STRING = 4096
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


def _string_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > MAX_STRING:
        return f"has more than {MAX_STRING} characters"
    if "\x00" in value:
        return "contains a NUL character"
    return None


def validate_command(command: Any) -> None:
    """None (the image's own command) or a list of strings."""
    if command is None:
        return
    if not isinstance(command, list):
        raise ValidationError({"command": ["Expected a list of strings, or null."]})
    if len(command) > MAX_ITEMS:
        raise ValidationError({"command": [f"At most {MAX_ITEMS} items."]})
    for index, item in enumerate(command):
        problem = _string_problem(item)
        if problem:
            raise ValidationError({"command": [f"Item {index} {problem}."]})


def validate_env(env: Any) -> None:
    """An object of environment variables: names and string values."""
    if not isinstance(env, dict):
        raise ValidationError({"env": ["Expected an object of NAME: value strings."]})
    if len(env) > MAX_ITEMS:
        raise ValidationError({"env": [f"At most {MAX_ITEMS} variables."]})
    for name, value in env.items():
        if not _ENV_NAME.fullmatch(name):
            raise ValidationError(
                {"env": [f"{name[:80]!r} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)."]}
            )
        problem = _string_problem(value)
        if problem:
            raise ValidationError({"env": [f"The value of {name} {problem}."]})


def workload_name(deployment_id: int) -> str:
    """Deterministic per installation and deployment: a retried start finds its own."""
    return f"hv-{installation_id()}-{deployment_id}"


def workload_labels(deployment_id: int) -> dict[str, str]:
    return {INSTALLATION_LABEL: installation_id(), DEPLOYMENT_LABEL: str(deployment_id)}


def workload_spec(deployment: Deployment) -> WorkloadSpec:
    """What the runtime runs for a deployment (its fields, read as they are)."""
    return WorkloadSpec(
        name=workload_name(deployment.pk),
        image=deployment.image,
        labels=workload_labels(deployment.pk),
        command=tuple(deployment.command) if deployment.command is not None else None,
        env=dict(deployment.env),
        cpu_millicores=deployment.cpu,
        ram_mb=deployment.ram_mb,
        gpu=deployment.gpu,
    )
