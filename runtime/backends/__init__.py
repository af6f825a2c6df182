"""The backends, one class per runtime kind, behind one protocol (`base.Backend`).

Adding an engine (Kubernetes) is one more class with the protocol's seven methods
and one more entry in `BACKENDS`; nothing above the runtime app changes
(docs/runtimes.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.backends.base import Backend
from runtime.backends.docker_engine import DockerBackend
from runtime.backends.libvirt_domains import LibvirtBackend
from runtime.backends.slurm_jobs import SlurmBackend, option_errors

BACKENDS: dict[str, type] = {
    "docker": DockerBackend,
    "libvirt": LibvirtBackend,
    "slurm": SlurmBackend,
}
# Kinds whose options are checked when a runtime is registered: the errors, or [].
OPTION_CHECKS: dict[str, Callable[[dict[str, Any]], list[str]]] = {"slurm": option_errors}


def build_backend(
    *, kind: str, endpoint: str, options: dict[str, Any], credentials: dict[str, Any]
) -> Backend:
    """A backend for one endpoint; `KeyError` for a kind with no backend here."""
    return BACKENDS[kind](endpoint=endpoint, options=options, credentials=credentials)
