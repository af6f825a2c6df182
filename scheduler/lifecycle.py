"""The runtime lifecycle: carry out what passes decided, and keep the database and the
runtimes in agreement.

Everything here runs after commit and outside every lock (an RQ job, or in-process in
the embedded default): engine calls go through `runtime.gateway` (retries, the circuit
breaker), and each outcome is written back by one short transaction,
`deployments.services.deployment_report`, which re-checks the status under the locks
(a report that a person's action overtook is dropped).

- `drive_cluster`: stops the cluster's `stopping` deployments (graceful stop, a kill
  after `RUNTIME_STOP_GRACE_SECONDS`; logs kept; workload removed; only then is the room
  released and a pass requested, so a preemptor never runs beside its victim), then
  starts its `starting` ones (`starting -> running` once the engine confirms; an engine
  refusal fails it with the engine's words). An engine with a queue of its own (Slurm)
  may answer `queued`: the deployment stays `starting`, holding its room, until
  reconciliation sees the engine run it.
- `reconcile_runtime`: lists this installation's labelled workloads on the runtime and
  compares them with the database: a queued start the engine now runs is confirmed
  (`starting -> running`); a workload that exited while nobody watched ends its
  deployment with its exit code; one that vanished fails it ("lost by the runtime"); a
  labelled workload whose deployment is over or unknown is stopped and removed. It never
  touches a workload without this installation's label.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings

from clusters.models import Cluster
from deployments.models import HOLDS_ROOM, Deployment, Status
from deployments.services import RuntimeReport, deployment_note, deployment_report
from deployments.statemachine import RuntimeAction
from deployments.workloads import DEPLOYMENT_LABEL, workload_name, workload_spec
from runtime.backends.base import (
    ALIVE,
    Phase,
    RuntimeUnavailable,
    WorkloadRejected,
    WorkloadState,
)
from runtime.gateway import RuntimeGateway, gateway_for
from runtime.labels import installation_labels
from runtime.models import Runtime

logger = logging.getLogger(__name__)
LOG_LINES = 1000


@dataclass
class DriveResult:
    started: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)
    unreachable: bool = False


def drive_cluster(*, cluster_id: int) -> DriveResult:
    """Carry out the cluster's pending stops, then its pending starts."""
    result = DriveResult()
    cluster = Cluster.objects.select_related("runtime").filter(pk=cluster_id).first()
    if cluster is None or cluster.runtime is None:
        return result
    gateway = gateway_for(cluster.runtime)
    pending = Deployment.objects.filter(
        cluster_id=cluster_id, status__in=[Status.STOPPING, Status.STARTING]
    ).order_by("pk")
    stopping = [d for d in pending if d.status == Status.STOPPING]
    starting = [d for d in pending if d.status == Status.STARTING]
    try:
        for deployment in stopping:  # first: their room is what preemptors wait for
            _stop(gateway, deployment, result)
        for deployment in _not_queued(gateway, starting):
            _start(gateway, deployment, result)
    except RuntimeUnavailable as error:
        result.unreachable = True
        _note_unreachable(cluster.runtime, [*stopping, *starting], error)
    return result


def _not_queued(gateway: RuntimeGateway, starting: list[Deployment]) -> list[Deployment]:
    """The starts to make: on an engine with a queue of its own (Slurm), those it holds
    queued already wait there (reconciliation confirms them once it runs them). One
    listing instead of one look per start: with many jobs PENDING in Slurm, every drive
    would otherwise ask about each of them again."""
    if not gateway.queues or len(starting) < 2:
        return starting
    queued = {
        workload.name
        for workload in gateway.list_workloads(labels=installation_labels())
        if workload.state.phase == Phase.QUEUED
    }
    return [d for d in starting if workload_name(d.pk) not in queued]


def _stop(gateway: RuntimeGateway, deployment: Deployment, result: DriveResult) -> None:
    name = workload_name(deployment.pk)
    grace = settings.RUNTIME_STOP_GRACE_SECONDS
    state = gateway.stop(name, grace_seconds=grace)
    lines = gateway.logs(name, tail=LOG_LINES + 1) if state.phase != Phase.MISSING else None
    how = "stopped by the runtime"
    if state.exit_code == 137 and not state.oom_killed:
        how = f"killed by the runtime after the {grace:g} s grace period"
    report = RuntimeReport(
        action=RuntimeAction.STOPPED,
        reason=how,
        exit_code=state.exit_code,
        log=lines,
        source=gateway.runtime.kind,
    )
    if deployment_report(deployment_id=deployment.pk, report=report):
        result.stopped.append(deployment.pk)
    gateway.remove(name)


def _start(gateway: RuntimeGateway, deployment: Deployment, result: DriveResult) -> None:
    name = workload_name(deployment.pk)
    try:
        state = gateway.start(workload_spec(deployment))
    except WorkloadRejected as error:
        report = RuntimeReport(
            action=RuntimeAction.EXITED_ERROR,
            reason=f"the runtime could not start it: {error}",
            source=gateway.runtime.kind,
        )
        if deployment_report(deployment_id=deployment.pk, report=report):
            result.ended.append(deployment.pk)
        gateway.remove(name)
        return
    if state.phase == Phase.QUEUED:
        # The engine queued it (a Slurm job PENDING): still `starting`, its room held;
        # reconciliation confirms the start once the engine runs it.
        deployment_note(
            deployment_id=deployment.pk,
            status=Status.STARTING,
            reason=_queued_reason(gateway.runtime, state),
        )
        return
    _confirm_start(gateway, deployment.pk, result.started)
    if state.ended:
        _finish(gateway, deployment.pk, state, result)


def _queued_reason(runtime: Runtime, state: WorkloadState) -> str:
    why = f" ({state.waits_for})" if state.waits_for else ""
    return f"queued by runtime {runtime.name}, which has not run it yet{why}"


def _confirm_start(gateway: RuntimeGateway, deployment_id: int, started: list[int]) -> None:
    report = RuntimeReport(
        action=RuntimeAction.STARTED, reason=f"running on runtime {gateway.runtime.name}"
    )
    if deployment_report(deployment_id=deployment_id, report=report):
        started.append(deployment_id)


def _finish(
    gateway: RuntimeGateway, deployment_id: int, state: WorkloadState, result: DriveResult
) -> None:
    """The workload exited: keep its lines, end the deployment, remove the workload."""
    name = workload_name(deployment_id)
    lines = gateway.logs(name, tail=LOG_LINES + 1)
    if state.oom_killed:
        action, reason = RuntimeAction.EXITED_ERROR, "killed: out of memory"
    elif state.exit_code is None:
        # Ended without exiting (a Slurm job cancelled outside the service, or one Slurm
        # failed without running it): the engine's words are the whole reason.
        action, reason = RuntimeAction.EXITED_ERROR, state.error or "ended without an exit code"
    elif state.exit_code == 0:
        action, reason = RuntimeAction.EXITED_OK, "exited with code 0"
    else:
        action, reason = RuntimeAction.EXITED_ERROR, f"exited with code {state.exit_code}"
    if state.error and reason != state.error:
        reason = f"{reason} ({state.error})"
    report = RuntimeReport(
        action=action,
        reason=reason,
        exit_code=state.exit_code,
        log=lines,
        source=gateway.runtime.kind,
    )
    if deployment_report(deployment_id=deployment_id, report=report):
        result.ended.append(deployment_id)
    gateway.remove(name)


def _note_unreachable(runtime: Runtime, deployments: list[Deployment], error: Exception) -> None:
    """They keep their status (and their room): say why nothing happens."""
    for deployment in deployments:
        verb = "stopping" if deployment.status == Status.STOPPING else "starting"
        deployment_note(
            deployment_id=deployment.pk,
            status=deployment.status,
            reason=f"runtime {runtime.name} is unreachable ({error}); {verb} it when it answers",
        )


# --- reconciliation ----------------------------------------------------------------------


@dataclass
class ReconcileResult:
    started: list[int] = field(default_factory=list)  # queued starts the engine now runs
    ended: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    orphans_removed: list[str] = field(default_factory=list)
    unreachable: bool = False


def reconcile_runtime(*, runtime_id: int) -> ReconcileResult:
    """Compare what the runtime runs with what the database says (module docstring)."""
    result = ReconcileResult()
    runtime = Runtime.objects.filter(pk=runtime_id).first()
    if runtime is None:
        return result
    gateway = gateway_for(runtime)
    try:
        # The listing first, the database second: a workload created after the listing
        # is not in it, so it can never be taken for an orphan.
        workloads = gateway.list_workloads(labels=installation_labels())
        held = {
            d.pk: d
            for d in Deployment.objects.filter(cluster__runtime=runtime, status__in=HOLDS_ROOM)
        }
        listed = {}
        for workload in workloads:
            deployment_id = _deployment_of(workload.labels)
            if deployment_id in held:
                listed[deployment_id] = workload
            else:
                _remove_orphan(gateway, workload.name, result)
        for deployment in held.values():
            if deployment.status == Status.RUNNING:
                _check_running(gateway, deployment, listed.get(deployment.pk), result)
            elif deployment.status == Status.STARTING:
                _check_starting(gateway, deployment, listed.get(deployment.pk), result)
    except RuntimeUnavailable:
        result.unreachable = True
    return result


def _deployment_of(labels: dict[str, str]) -> int | None:
    value = labels.get(DEPLOYMENT_LABEL, "")
    return int(value) if value.isdigit() else None


def _remove_orphan(gateway: RuntimeGateway, name: str, result: ReconcileResult) -> None:
    gateway.stop(name, grace_seconds=0)
    gateway.remove(name)
    result.orphans_removed.append(name)
    logger.info("removed an orphan workload", extra={"workload": name})


def _check_starting(
    gateway: RuntimeGateway, deployment: Deployment, listed, result: ReconcileResult
) -> None:
    """A start the engine queued: confirmed once the engine runs it, ended if it ended
    first (a Slurm job cancelled while PENDING). Not listed or not yet running: its start
    is still under way (`drive_cluster`, or the safety net's retry): nothing to say."""
    if listed is None or listed.state.phase in (Phase.CREATED, Phase.QUEUED):
        return
    if listed.state.phase == Phase.RUNNING:
        _confirm_start(gateway, deployment.pk, result.started)
        return
    state = gateway.state(workload_name(deployment.pk))  # afresh, as below
    if state.ended:
        drive = DriveResult()
        _finish(gateway, deployment.pk, state, drive)
        result.ended.extend(drive.ended)


def _check_running(
    gateway: RuntimeGateway, deployment: Deployment, listed, result: ReconcileResult
) -> None:
    # Listed and not ended: nothing to do (a Slurm job requeued lists as queued; asking
    # each one's state again would cost one squeue per job).
    if listed is not None and listed.state.phase in ALIVE:
        return
    # Asked afresh: the listing may be older than a start made since.
    state = gateway.state(workload_name(deployment.pk))
    if state.ended:
        drive = DriveResult()
        _finish(gateway, deployment.pk, state, drive)
        result.ended.extend(drive.ended)
    elif state.phase == Phase.MISSING:
        report = RuntimeReport(
            action=RuntimeAction.EXITED_ERROR,
            reason="lost by the runtime: its workload vanished",
            source=gateway.runtime.kind,
        )
        if deployment_report(deployment_id=deployment.pk, report=report):
            result.lost.append(deployment.pk)
