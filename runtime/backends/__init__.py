"""The backends, one class per runtime kind, behind one protocol (`base.Backend`).

Adding an engine (Kubernetes, Slurm) is one more class with the protocol's seven methods
and one more entry in `BACKENDS`; nothing above the runtime app changes
(docs/runtimes.md).
"""

from __future__ import annotations

from typing import Any

from runtime.backends.base import Backend
from runtime.backends.docker_engine import DockerBackend
from runtime.backends.libvirt_domains import LibvirtBackend

BACKENDS: dict[str, type] = {"docker": DockerBackend, "libvirt": LibvirtBackend}


def build_backend(
    *, kind: str, endpoint: str, options: dict[str, Any], credentials: dict[str, Any]
) -> Backend:
    """A backend for one endpoint; `KeyError` for a kind with no backend here."""
    return BACKENDS[kind](endpoint=endpoint, options=options, credentials=credentials)
