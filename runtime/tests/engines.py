"""Real engines for the tests: a private dockerd, and images built locally.

`make test` installs Debian's docker.io and busybox-static when they are missing (the
`engines` target). Each test session starts its own dockerd on a socket in its temporary
directory, with the flags that work on these machines (no bridge, no iptables: containers
run with network mode `none`), and stops it at the end. No registry can be reached: the
test image is built FROM scratch with the static busybox.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
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

# runc for a gated engine: while the gate is closed, `start` waits for it to open and then
# fails without starting anything (the start that a crash cut off never reached runc).
_GATED_RUNC = """#!/bin/sh
for arg in "$@"; do
    [ "$arg" = start ] && starting=yes
    container=$arg
done
if [ "$starting" = yes ] && [ -e {directory}/gate-closed ]; then
    echo "$container" > {directory}/gate-waiting.new
    mv {directory}/gate-waiting.new {directory}/gate-waiting
    while [ -e {directory}/gate-closed ]; do sleep 0.05; done
    rm -f {directory}/gate-waiting
    exit 1
fi
exec runc "$@"
"""


@dataclass(frozen=True)
class TlsFiles:
    """A CA, a server certificate for 127.0.0.1 and a client certificate it signed."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """Certificates made with the openssl CLI, as `docs.docker.com` "Protect the Docker
    daemon socket" makes them: the server's for IP 127.0.0.1, the client's for clientAuth."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=hv test CA",
            "-keyout", "ca-key.pem", "-out", "ca.pem")  # fmt: skip
    for name, extensions in (
        ("server", ["subjectAltName=IP:127.0.0.1", "extendedKeyUsage=serverAuth"]),
        ("client", ["extendedKeyUsage=clientAuth"]),
    ):
        (directory / f"{name}.ext").write_text("".join(f"{line}\n" for line in extensions))
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=hv test {name}",
                "-keyout", f"{name}-key.pem", "-out", f"{name}.csr")  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                "-out", f"{name}-cert.pem")  # fmt: skip
    return TlsFiles(
        ca=directory / "ca.pem",
        server_cert=directory / "server-cert.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client-cert.pem",
        client_key=directory / "client-key.pem",
    )


@dataclass
class DockerEngine:
    """A dockerd of the test session's own.

    With `tls`, it also serves the Engine API over TCP on 127.0.0.1, requiring a client
    certificate signed by the CA (`--tlsverify`), on a port bound here before it starts
    and handed over by socket activation (`fd://`), so no port is guessed.
    """

    directory: Path
    tls: TlsFiles | None = None
    # Containers run through `runc-gated` (`_GATED_RUNC`): see `close_gate`.
    gated: bool = False
    process: subprocess.Popen | None = None
    _listener: socket.socket | None = None

    @property
    def tcp_endpoint(self) -> str:
        if self._listener is None:
            raise RuntimeError("this engine serves no TCP (no tls given)")
        return f"tcp://127.0.0.1:{self._listener.getsockname()[1]}"

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
        command = ["dockerd"]
        pass_fds: tuple[int, ...] = ()
        if self.gated:
            wrapper = d / "runc-gated"
            wrapper.write_text(_GATED_RUNC.format(directory=d))
            wrapper.chmod(0o755)
            command += [f"--add-runtime=gated={wrapper}", "--default-runtime=gated"]
        if self.tls is not None:
            if self._listener is None:
                self._listener = socket.socket()
                self._listener.bind(("127.0.0.1", 0))
                self._listener.listen(64)
            # systemd's socket activation: the listener as fd 3 (bash: dash takes no fd
            # above 9), LISTEN_PID the pid that
            # `exec` keeps.
            fd = self._listener.fileno()
            activation = f'exec 3<&{fd}; LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"'
            command = ["bash", "-c", activation, "bash", "dockerd", "--host=fd://"]
            command += [
                "--tlsverify",
                f"--tlscacert={self.tls.ca}",
                f"--tlscert={self.tls.server_cert}",
                f"--tlskey={self.tls.server_key}",
            ]
            pass_fds = (fd,)
        # Its own session: signals for the test run never reach it, and it never
        # outlives the stop below.
        self.process = subprocess.Popen(
            [
                *command,
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
            pass_fds=pass_fds,
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
        """SIGKILL to dockerd, as a crash of the engine would. Its containerd (in a
        process group of its own) dies with it: dockerd starts it with SIGKILL as its
        parent-death signal. The containers' shims live on."""
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None
        # containerd lingers as a zombie nobody reaps here (no init that does): a pid
        # file naming it would make the next dockerd wait for it, and fail.
        (self.directory / "exec" / "containerd" / "containerd.pid").unlink(missing_ok=True)

    def close_gate(self) -> None:
        """From now on a container's `runc start` waits until `open_gate`, then fails:
        containerd has created the task, dockerd waits for its start (a start in flight
        between the task's creation and its start)."""
        (self.directory / "gate-closed").touch()

    def gate_waiting(self) -> str:
        """The id of the container whose `runc start` waits at the gate, or ''.

        (Asking dockerd would wait: it holds the container while it starts it.)"""
        with contextlib.suppress(FileNotFoundError):
            return (self.directory / "gate-waiting").read_text().strip()
        return ""

    def open_gate(self) -> None:
        (self.directory / "gate-closed").unlink()

    def gated_start_over(self) -> bool:
        """No `runc start` waits at the gate any more (it gave up, or containerd killed
        it when the dockerd that asked for it died)."""
        return not _processes_naming(self.directory / "runc-gated")

    def stop(self) -> None:
        if self.process is None:
            return
        (self.directory / "gate-closed").unlink(missing_ok=True)
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
        # What outlived it: a containerd left by `kill(containerd=False)` that it did not
        # stop, a shim of a task it could not clean. Ours are named by our directory.
        for pid in _processes_naming(self.directory):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # And the root file system a killed shim's container kept mounted, deepest first,
        # so that the directory can be removed.
        for mount_point in sorted(_mounts_under(self.directory), reverse=True):
            subprocess.run(["umount", mount_point], check=False, capture_output=True)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def build_test_image(self) -> str:
        client = self.client()
        try:
            return build_test_image(client)
        finally:
            client.close()


def _processes_naming(directory: Path) -> list[int]:
    """The pids whose command line names `directory` (from /proc)."""
    found = []
    needle = str(directory).encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if needle in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def _mounts_under(directory: Path) -> list[str]:
    prefix = f"{directory}/"
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    return [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]


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


class EngineProxy:
    """A unix socket in front of a dockerd's that can keep the answer to a start from
    its caller, so a test can crash the engine at a known point of a start.

    Requests pass through as they come; after `hold_next_start()`, the next
    `POST .../containers/<name>/start` still reaches the engine, but nothing the engine
    answers on that connection reaches the caller. `held` names the container once the
    engine has answered that start: the engine has done it, the caller still waits. A
    connection whose engine side closes is closed on the caller's side too.
    """

    _START = re.compile(rb"POST /v[\d.]+/containers/([^/]+)/start[ ?]")
    _LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)")

    def __init__(self, directory: Path, target: Path) -> None:
        self.socket = directory / "proxy.sock"
        self.target = target
        self.held: str | None = None
        self._hold_next = False
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_UNIX)
        self._server.bind(str(self.socket))
        self._server.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def hold_next_start(self) -> None:
        with self._lock:
            self._hold_next, self.held = True, None

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                caller, _ = self._server.accept()
            except OSError:
                return  # closed
            engine = socket.socket(socket.AF_UNIX)
            try:
                engine.connect(str(self.target))
            except OSError:
                caller.close()  # the engine is down: the caller sees a closed connection
                continue
            held: list[str] = []  # the container whose start this connection holds
            for pump in (self._requests, self._answers):
                threading.Thread(target=pump, args=(caller, engine, held), daemon=True).start()

    def _requests(self, caller: socket.socket, engine: socket.socket, held: list[str]) -> None:
        """Caller to engine, a request at a time (the SDK sends Content-Length bodies)."""
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    buffer += self._receive(caller)
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = self._LENGTH.search(head)
                size = int(length.group(1)) if length else 0
                while len(rest) < size:
                    rest += self._receive(caller)
                request, buffer = head + b"\r\n\r\n" + rest[:size], rest[size:]
                start = self._START.match(request)
                with self._lock:
                    if start and self._hold_next:
                        self._hold_next = False
                        held.append(start.group(1).decode())  # before the engine answers
                engine.sendall(request)
        except OSError:
            engine.close()

    @staticmethod
    def _receive(connection: socket.socket) -> bytes:
        data = connection.recv(65536)
        if not data:
            raise ConnectionResetError("closed")
        return data

    def _answers(self, caller: socket.socket, engine: socket.socket, held: list[str]) -> None:
        try:
            while data := engine.recv(65536):
                if held:
                    with self._lock:
                        self.held = held[0]
                    continue
                caller.sendall(data)
        except OSError:
            pass
        finally:
            caller.close()
