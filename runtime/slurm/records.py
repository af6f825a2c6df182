"""What the Slurm backend keeps beside the jobs' output files, because Slurm forgets.

Slurm drops a finished job from `squeue` after `MinJobAge` seconds, and `sacct` needs
slurmdbd, which a cluster may not run. So the first time an ended job is seen, its final
state is written to `<name>-<job id>.final` (JSON) in the runtime's output directory, the
same directory (shared with the nodes) where the job writes `<name>-<job id>.out`.
Slurm cannot delete a job either: `remove` writes `<name>.removed` holding the highest job
id removed, and jobs of that name up to it no longer count. Starts take `<name>.lock`
(flock) so that two concurrent starts of one name submit one job.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from runtime.slurm.client import JobInfo

_FINAL = re.compile(r"(?P<name>.+)-(?P<job_id>[0-9]+)\.final")


class JobRecords:
    """Final states, removal marks and start locks under one directory."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def ensure_directory(self) -> None:
        self.directory.mkdir(mode=0o755, parents=True, exist_ok=True)

    def _write(self, path: Path, text: str) -> None:
        # Written whole then renamed: a reader never sees half a record.
        self.ensure_directory()
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(temporary, path)

    # -- final states -------------------------------------------------------------------------

    def record_final(self, job: JobInfo) -> None:
        path = self.directory / f"{job.name}-{job.job_id}.final"
        if not path.exists():
            self._write(path, json.dumps(asdict(job)))

    def finals(self, name: str | None = None) -> list[JobInfo]:
        """The recorded final states (of one name, or all), still counting."""
        pattern = f"{name}-*.final" if name else "*.final"
        jobs = []
        for path in self.directory.glob(pattern):
            match = _FINAL.fullmatch(path.name)
            if match is None or (name and match["name"] != name):
                continue
            if int(match["job_id"]) > self.removed_up_to(match["name"]):
                with contextlib.suppress(FileNotFoundError, ValueError):
                    jobs.append(JobInfo(**json.loads(path.read_text())))
        return jobs

    # -- removal ------------------------------------------------------------------------------

    def removed_up_to(self, name: str) -> int:
        try:
            return int((self.directory / f"{name}.removed").read_text())
        except (FileNotFoundError, ValueError):
            return 0

    def mark_removed(self, name: str, job_id: int) -> None:
        """Jobs of `name` up to `job_id` no longer count; their files are deleted."""
        if job_id <= self.removed_up_to(name):
            return
        self._write(self.directory / f"{name}.removed", str(job_id))
        for suffix in ("final", "out"):
            for path in self.directory.glob(f"{name}-*.{suffix}"):
                number = path.name[len(name) + 1 : -len(suffix) - 1]
                if number.isdigit() and int(number) <= job_id:
                    path.unlink(missing_ok=True)

    # -- starts -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def start_lock(self, name: str) -> Iterator[None]:
        with open(self.directory / f"{name}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
