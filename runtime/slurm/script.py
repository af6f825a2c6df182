"""The batch script a job runs: its environment and command, quoted for the shell.

Environment values travel inside the script, each one single-quoted by `shlex.quote`, so
commas, quotes, dollars and newlines arrive as written (sbatch's `--export=K=V,...` splits
on commas and cannot carry them). The job starts from an empty environment (`--export=NONE`)
plus Slurm's own variables and a default PATH, unless the request sets PATH itself.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
LABEL_VALUE = re.compile(r"[A-Za-z0-9_.:/-]+", re.ASCII)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def check_label(text: str) -> None:
    """Labels travel in the job's comment as `k=v,k=v`: no separators inside."""
    if not LABEL_VALUE.fullmatch(text):
        raise ValueError(f"label {text!r} may hold only letters, digits and _.:/-")


def batch_script(command: Sequence[str], env: Mapping[str, str]) -> str:
    """A POSIX shell script that exports `env` and then execs `command`."""
    if not command:
        raise ValueError("a Slurm job needs a command")
    lines = ["#!/bin/sh", "# Written by hypervisor: the environment, then the command."]
    variables = {"PATH": DEFAULT_PATH, **env}
    for name, value in variables.items():
        if not ENV_NAME.fullmatch(name):
            raise ValueError(f"environment variable name {name!r} is not a shell name")
        if "\x00" in value:
            raise ValueError(f"environment variable {name} holds a NUL character")
        lines.append(f"export {name}={shlex.quote(value)}")
    if "\x00" in "".join(command):
        raise ValueError("the command holds a NUL character")
    lines.append("exec " + shlex.join(command))
    return "\n".join(lines) + "\n"
