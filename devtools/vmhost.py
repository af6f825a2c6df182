"""A private libvirtd with QEMU, and tiny bootable guest images, for the real-VM test.

`devtools/scripts/ensure-libvirt-vm` (run by `make vm-test`) installs Debian's QEMU,
libvirt daemon, syslinux, mtools and busybox-static, and extracts a Debian kernel (with
the two modules the guest loads) into `KERNEL_DIR`. Nothing here touches the machine's
own libvirt: the daemon is a *session* libvirtd (`qemu:///session`) whose every
directory (configuration, sockets, state, the storage pool, the consoles) is under one
temporary directory. Run as root, it runs as `nobody` (a root libvirtd is always the
system one, configured in /etc/libvirt); the tests, as root, reach its socket through
`qemu+unix:///session?socket=...`. QEMU emulates (TCG, domain type `qemu`): no KVM.

A guest image is what the libvirt backend documents (docs/runtimes.md): a qcow2 template
volume in the runtime's storage pool, named after the image reference, which each domain
boots through a copy-on-write overlay. Here each template is a FAT disk that syslinux
boots into the Debian kernel with a busybox initramfs; its `/init` does what the
image's name says (`GUEST_IMAGES`) and writes to the serial console, which is the
deployment's log.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import libvirt

from runtime.backends.libvirt_domains import volume_name

KERNEL_DIR = Path(os.environ.get("HV_VM_KERNEL_DIR", "/var/cache/hypervisor/vm-kernel"))
KERNEL_FILES = ("vmlinuz", "button.ko", "evdev.ko")
BUSYBOX = Path("/bin/busybox")
POOL = "hv-vm"
# Image reference -> what its guest does once booted.
GUEST_IMAGES = {
    "hv-test/vm-exit:1": "exit",  # says hello, then powers itself off (exit 0)
    "hv-test/vm-graceful:1": "graceful",  # powers off when the ACPI power button is pressed
    "hv-test/vm-stubborn:1": "stubborn",  # ignores the power button: only a kill ends it
}
READY = "hv: ready"  # the guest's console line once its workload (and handler) is up
HELLO = "hello from the guest"
_INIT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
workload=$(sed -n 's/.*hv\\.workload=\\([a-z]*\\).*/\\1/p' /proc/cmdline)
echo "hv: booted, workload $workload"
case "$workload" in
exit)
  echo "{HELLO}"
  sleep 1
  ;;
graceful)
  # The ACPI power button is an input device: any event on it is a press.
  insmod /lib/evdev.ko
  insmod /lib/button.ko
  for event in /sys/class/input/event*; do
    grep -q "Power Button" "$event/device/name" || continue
    (dd if="/dev/input/${{event##*/}}" bs=24 count=1 >/dev/null 2>&1; touch /pressed) &
  done
  echo "{READY}"
  while [ ! -e /pressed ]; do sleep 0.2; done
  echo "hv: ACPI power button pressed"
  ;;
*)
  echo "{READY}"
  while :; do sleep 60; done
  ;;
esac
echo "hv: powering off"
sleep 1
poweroff -f
"""


def missing_requirements() -> list[str]:
    commands = ["libvirtd", "qemu-system-x86_64", "qemu-img", "syslinux", "mformat", "mcopy"]
    missing = [command for command in commands if shutil.which(command) is None]
    missing += [str(path) for path in [BUSYBOX] if not path.exists()]
    return missing + [
        str(KERNEL_DIR / name) for name in KERNEL_FILES if not (KERNEL_DIR / name).exists()
    ]


def _run(*argv: str | Path) -> None:
    subprocess.run([str(arg) for arg in argv], check=True, capture_output=True, timeout=120)


@dataclass
class VmHost:
    """A session libvirtd under `root`, with a storage pool holding the guest images."""

    root: Path
    _process: subprocess.Popen | None = field(default=None, repr=False)

    @classmethod
    def create(cls) -> VmHost:
        root = Path(tempfile.mkdtemp(prefix="hv-vm-"))
        root.chmod(0o755)  # QEMU, as nobody, opens the disks and consoles under it
        return cls(root=root)

    @property
    def socket(self) -> Path:
        return self.root / "run" / "libvirt" / "libvirt-sock"

    @property
    def uri(self) -> str:
        return f"qemu+unix:///session?socket={self.socket}"

    @property
    def pool_dir(self) -> Path:
        return self.root / "pool"

    @property
    def console_dir(self) -> Path:
        return self.root / "console"

    def console(self, name: str) -> list[str]:
        path = self.console_dir / f"{name}.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    # -- images -----------------------------------------------------------------------------

    def build_images(self) -> None:
        """One qcow2 template per image of `GUEST_IMAGES`, in the pool's directory."""
        work = self.root / "build"
        (work / "initrd" / "lib").mkdir(parents=True)
        for sub in ("bin", "proc", "sys", "dev"):
            (work / "initrd" / sub).mkdir()
        shutil.copy(BUSYBOX, work / "initrd" / "bin" / "busybox")
        for module in ("button.ko", "evdev.ko"):
            shutil.copy(KERNEL_DIR / module, work / "initrd" / "lib" / module)
        init = work / "initrd" / "init"
        init.write_text(_INIT)
        init.chmod(0o755)
        listing = "\n".join(
            str(path.relative_to(work / "initrd")) for path in sorted((work / "initrd").rglob("*"))
        )
        archive = subprocess.run(
            [str(BUSYBOX), "cpio", "-o", "-H", "newc", "-R", "0:0"],
            cwd=work / "initrd",
            input=listing.encode(),
            capture_output=True,
            check=True,
        ).stdout
        (work / "initrd.gz").write_bytes(gzip.compress(archive))
        self.pool_dir.mkdir()
        for image, workload in GUEST_IMAGES.items():
            disk = work / f"{workload}.img"
            # A whole-disk FAT file system (no partition table) whose boot sector is
            # syslinux's: SeaBIOS boots it from the virtio disk.
            _run("mformat", "-C", "-i", disk, "-T", "40960", "-h", "64", "-s", "32", "::")
            _run("syslinux", "--install", disk)
            config = work / f"{workload}.cfg"
            config.write_text(
                "DEFAULT hv\nPROMPT 0\nTIMEOUT 1\nLABEL hv\n  KERNEL vmlinuz\n  INITRD initrd\n"
                f"  APPEND console=ttyS0 quiet hv.workload={workload}\n"
            )
            _run("mcopy", "-i", disk, KERNEL_DIR / "vmlinuz", "::vmlinuz")
            _run("mcopy", "-i", disk, work / "initrd.gz", "::initrd")
            _run("mcopy", "-i", disk, config, "::syslinux.cfg")
            _run("qemu-img", "convert", "-O", "qcow2", disk, self.pool_dir / volume_name(image))
        shutil.rmtree(work)

    # -- the daemon -------------------------------------------------------------------------

    def start(self, *, timeout: float = 60) -> None:
        """Build the images, start libvirtd, and give it the pool `POOL`."""
        self.build_images()
        self.console_dir.mkdir()
        config = self.root / "config" / "libvirt"
        config.mkdir(parents=True)
        # QEMU's own output to a file beside its state, not through a virtlogd.
        (config / "qemu.conf").write_text('stdio_handler = "file"\n')
        for sub in ("home", "run", "cache"):
            (self.root / sub).mkdir(mode=0o700)
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.root / "home"),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "XDG_CACHE_HOME": str(self.root / "cache"),
        }
        argv = ["libvirtd"]
        if os.geteuid() == 0:
            _run("chown", "-R", "nobody:nogroup", self.root)
            argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]
        with (self.root / "libvirtd.log").open("ab") as log:
            self._process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"libvirtd exited; see {self.root / 'libvirtd.log'}")
            try:
                conn = libvirt.open(self.uri)
                break
            except libvirt.libvirtError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        try:
            conn.storagePoolCreateXML(
                f"<pool type='dir'><name>{POOL}</name>"
                f"<target><path>{self.pool_dir}</path></target></pool>",
                0,
            )
        finally:
            conn.close()

    def _qemu_pids(self) -> list[int]:
        pids = []
        for pidfile in (self.root / "run" / "libvirt" / "qemu" / "run").glob("*.pid"):
            with contextlib.suppress(ValueError, OSError):
                pids.append(int(pidfile.read_text().strip()))
        return pids

    def stop(self) -> None:
        """Destroy every domain, stop libvirtd, kill any QEMU it left, delete everything."""
        if self._process is not None:
            with contextlib.suppress(libvirt.libvirtError):
                conn = libvirt.open(self.uri)
                for domain in conn.listAllDomains():
                    if domain.isActive():
                        domain.destroy()
                    domain.undefine()
                conn.close()
            leftovers = self._qemu_pids()  # a session QEMU outlives its libvirtd
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)
