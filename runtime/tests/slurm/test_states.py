"""Slurm's states and wait statuses in the service's words (pure: no Slurm needed)."""

from __future__ import annotations

import pytest

from runtime.slurm.client import job_from_json, labels_from_comment, labels_to_comment
from runtime.slurm.states import Phase, exit_code_from_wait_status, outcome_of, phase_of


@pytest.mark.parametrize(
    ("state", "phase"),
    [
        ("PENDING", Phase.PENDING),
        ("CONFIGURING", Phase.PENDING),
        ("REQUEUED", Phase.PENDING),
        ("RUNNING", Phase.RUNNING),
        ("COMPLETING", Phase.RUNNING),
        ("SUSPENDED", Phase.RUNNING),
        ("COMPLETED", Phase.ENDED),
        ("FAILED", Phase.ENDED),
        ("CANCELLED", Phase.ENDED),
        ("OUT_OF_MEMORY", Phase.ENDED),
        ("TIMEOUT", Phase.ENDED),
        ("NODE_FAIL", Phase.ENDED),
    ],
)
def test_phases(state, phase):
    assert phase_of(state) is phase


def test_the_wait_status_is_decoded():
    assert exit_code_from_wait_status(0) == 0
    assert exit_code_from_wait_status(768) == 3
    assert exit_code_from_wait_status(9) == 137  # killed by SIGKILL


@pytest.mark.parametrize(
    ("state", "status", "succeeded", "cancelled", "exit_code", "reason"),
    [
        ("COMPLETED", 0, True, False, 0, ""),
        ("FAILED", 768, False, False, 3, "exited with code 3"),
        ("CANCELLED", 15, False, True, None, "cancelled in Slurm"),
        ("OUT_OF_MEMORY", 0, False, False, None, "killed for running out of memory"),
        ("TIMEOUT", 15, False, False, 143, "reached its time limit"),
        ("NODE_FAIL", 0, False, False, None, "its node failed"),
        ("SOMETHING_NEW", 0, False, False, None, "ended as SOMETHING_NEW in Slurm"),
    ],
)
def test_outcomes(state, status, succeeded, cancelled, exit_code, reason):
    outcome = outcome_of(state, status, "NonZeroExitCode" if state == "FAILED" else "None")

    assert (outcome.succeeded, outcome.cancelled, outcome.exit_code) == (
        succeeded,
        cancelled,
        exit_code,
    )
    assert outcome.reason.startswith(reason)


def test_a_job_slurm_failed_without_running_has_no_exit_code():
    # What squeue shows for a submission refused for more memory than any node has.
    outcome = outcome_of("FAILED", 1, "BadConstraints")

    assert (outcome.succeeded, outcome.exit_code) == (False, None)
    assert outcome.reason == "failed by Slurm without running (BadConstraints)"
    assert outcome_of("FAILED", 9, "RaisedSignal:9(Killed)").exit_code == 137


def test_labels_travel_in_the_comment_and_come_back():
    labels = {"io.hypervisor.installation": "a1b2", "io.hypervisor.deployment": "42"}
    comment = labels_to_comment(labels)

    assert comment == "io.hypervisor.installation=a1b2,io.hypervisor.deployment=42"
    assert labels_from_comment(comment) == labels
    assert labels_from_comment("") == {}
    assert labels_from_comment("free text, by someone") == {}


@pytest.mark.parametrize("bad", ["a,b", "a=b", "new\nline", "", "spa ce"])
def test_labels_that_would_break_the_comment_are_refused(bad):
    with pytest.raises(ValueError, match="label"):
        labels_to_comment({"io.hypervisor.deployment": bad})


def test_job_from_squeue_json_reads_later_versions_state_lists_too():
    job = job_from_json(
        {
            "job_id": 7,
            "name": "hv-1",
            "job_state": ["RUNNING", "COMPLETING"],
            "exit_code": 0,
            "comment": "io.hypervisor.deployment=1",
            "standard_output": "/out/%x-%j.%u.out%%",
            "user_name": "root",
            "cpus": 2,
            "tres_per_node": "gres:gpu:3",
        }
    )

    assert job.state == "COMPLETING"
    assert job.phase is Phase.RUNNING
    assert job.output_path == "/out/hv-1-7.root.out%"
    assert (job.cpus, job.gpus) == (2, 3)
    assert job_from_json({"job_id": 8, "tres_per_node": "gres/gpu:tesla:2"}).gpus == 2
    assert job_from_json({"job_id": 9, "tres_per_node": ""}).gpus == 0
