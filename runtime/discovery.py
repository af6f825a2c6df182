"""Finding a Docker engine on this machine (for `manage.py demo`): DOCKER_HOST, else the
default socket, if it answers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import docker
import requests
from docker.errors import DockerException

DEFAULT_SOCKET = Path("/var/run/docker.sock")


@dataclass(frozen=True)
class LocalDocker:
    endpoint: str
    images: list[str]  # tags the engine already has (no registry needed to run them)


def find_local_docker() -> LocalDocker | None:
    endpoint = os.environ.get("DOCKER_HOST") or (
        f"unix://{DEFAULT_SOCKET}" if DEFAULT_SOCKET.exists() else ""
    )
    if not endpoint:
        return None
    try:
        client = docker.DockerClient(base_url=endpoint, version="auto", timeout=5)
        try:
            tags = sorted(tag for image in client.images.list() for tag in image.tags)
        finally:
            client.close()
    except (DockerException, requests.RequestException, OSError):
        return None
    return LocalDocker(endpoint=endpoint, images=tags)
