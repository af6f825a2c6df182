"""Real engines for the tests: a private dockerd, and images built locally.

`make test` installs Debian's docker.io and busybox-static when they are missing (the
`engines` target). Each test session starts its own dockerd on a socket in its temporary
directory, with the flags that work on these machines (no bridge, no iptables: containers
run with network mode `none`), and stops it at the end. No registry can be reached: the
test image is built FROM scratch with the static busybox.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker

TEST_IMAGE = "hv-test/busybox:1"
BUSYBOX = Path("/bin/busybox")
_DOCKERFILE = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh"]
"""


@dataclass
class DockerEngine:
    """A dockerd of the test session's own."""

    directory: Path
    process: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        return self.directory / "docker.sock"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.endpoint, version="auto", timeout=60)

    def start(self, *, timeout: float = 30) -> None:
        if shutil.which("dockerd") is None:
            raise RuntimeError("dockerd is missing: `make engines` installs Debian's docker.io.")
        d = self.directory
        log = (d / "dockerd.log").open("ab")
        # Its own session: signals for the test run never reach it, and it never
        # outlives the stop below.
        self.process = subprocess.Popen(
            [
                "dockerd",
                f"--host=unix://{self.socket}",
                f"--data-root={d / 'data'}",
                f"--exec-root={d / 'exec'}",
                f"--pidfile={d / 'dockerd.pid'}",
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--ip-forward=false",
                "--storage-driver=overlay2",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited; see {d / 'dockerd.log'}")
            try:
                self.client().ping()
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError(f"dockerd did not answer in {timeout}s; see {d / 'dockerd.log'}")

    def kill(self) -> None:
        """SIGKILL to dockerd and the containerd it runs, as a crash of the engine would."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None
            # Its containerd may linger as a zombie nobody reaps here (no init that
            # does): a stale pid file would make the next dockerd wait for it.
            (self.directory / "exec" / "containerd" / "containerd.pid").unlink(missing_ok=True)

    def stop(self) -> None:
        if self.process is None:
            return
        client = self.client()
        for container in client.containers.list(all=True):
            container.remove(force=True)
        client.close()
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def build_test_image(self) -> str:
        client = self.client()
        try:
            return build_test_image(client)
        finally:
            client.close()


def build_test_image(client: docker.DockerClient) -> str:
    """The busybox image, FROM scratch (no registry needed); returns its tag."""
    if not BUSYBOX.exists():
        raise RuntimeError("busybox-static is missing: `make engines` installs it.")
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = tarfile.TarInfo("Dockerfile")
        dockerfile.size = len(_DOCKERFILE)
        tar.addfile(dockerfile, io.BytesIO(_DOCKERFILE))
        tar.add(str(BUSYBOX), arcname="busybox")
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=TEST_IMAGE, rm=True)
    return TEST_IMAGE
