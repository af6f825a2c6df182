"""Slurm's job states, read from `squeue --json`, in the service's words.

Slurm keeps a finished job for `MinJobAge` seconds and then forgets it (accounting may be
off), so whoever reads an ended state must record it the first time it is seen.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    """Where a job is, as far as room on the partition is concerned."""

    PENDING = "pending"  # queued in Slurm, holding nothing on a node yet
    RUNNING = "running"  # holding room on a node (also while completing or suspended)
    ENDED = "ended"  # gone from the nodes, with an outcome


# Slurm's base states and the flags squeue may print in their place (22.05 prints the flag's
# name when one is set: COMPLETING, CONFIGURING, ...).
PENDING_STATES = frozenset(
    {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
)
# COMPLETING: the job's processes may still be on the node, so its room is not free yet.
RUNNING_STATES = frozenset(
    {
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "STOPPED",
        "SIGNALING",
        "STAGE_OUT",
        "RESIZING",
        "POWER_UP_NODE",
        "UPDATE_DB",
    }
)
# Ended states, with the words a failure reason uses.
FAILURE_REASONS = {
    "FAILED": "failed",
    "OUT_OF_MEMORY": "killed for running out of memory (OUT_OF_MEMORY in Slurm)",
    "TIMEOUT": "reached its time limit (TIMEOUT in Slurm)",
    "NODE_FAIL": "its node failed (NODE_FAIL in Slurm)",
    "BOOT_FAIL": "its node failed to boot (BOOT_FAIL in Slurm)",
    "DEADLINE": "missed its deadline (DEADLINE in Slurm)",
    "PREEMPTED": "preempted by Slurm (PREEMPTED in Slurm)",
    "REVOKED": "revoked by a federated sibling (REVOKED in Slurm)",
}


@dataclass(frozen=True)
class Outcome:
    """How an ended job ended."""

    succeeded: bool
    cancelled: bool  # by scancel: ours (a stop) or someone else's
    exit_code: int | None
    reason: str


def exit_code_from_wait_status(status: int) -> int:
    """`squeue --json` reports the raw wait status: 768 is exit 3; a job killed by signal N
    reports N, which shells and Docker write as 128 + N."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def phase_of(state: str) -> Phase:
    if state in PENDING_STATES:
        return Phase.PENDING
    if state in RUNNING_STATES:
        return Phase.RUNNING
    return Phase.ENDED


# The reasons squeue gives a FAILED job that ran and exited (or died of a signal); any
# other (BadConstraints, ...) means Slurm failed it without running it.
RAN_REASONS = ("NonZeroExitCode", "RaisedSignal")


def outcome_of(state: str, wait_status: int, state_reason: str = "") -> Outcome:
    """The outcome of an ended job from its state, raw wait status and squeue's reason."""
    exit_code = exit_code_from_wait_status(wait_status)
    ran = state_reason in ("", "None") or state_reason.startswith(RAN_REASONS)
    if state == "FAILED" and not ran:
        return Outcome(
            succeeded=False,
            cancelled=False,
            exit_code=None,
            reason=f"failed by Slurm without running ({state_reason})",
        )
    if state == "COMPLETED":
        return Outcome(succeeded=True, cancelled=False, exit_code=exit_code, reason="")
    if state == "CANCELLED":
        return Outcome(succeeded=False, cancelled=True, exit_code=None, reason="cancelled in Slurm")
    if state == "FAILED":
        return Outcome(
            succeeded=False,
            cancelled=False,
            exit_code=exit_code,
            reason=f"exited with code {exit_code}",
        )
    reason = FAILURE_REASONS.get(state, f"ended as {state} in Slurm")
    code = exit_code if wait_status else None
    return Outcome(succeeded=False, cancelled=False, exit_code=code, reason=reason)
