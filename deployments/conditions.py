"""Dependency conditions: when one is met, when it can no longer be, and how a waiting
deployment's wait is said to a person."""

from __future__ import annotations

from collections.abc import Iterable

from deployments.models import FINISHED, Condition, Deployment, Status

_VERBS = {
    Condition.SUCCEEDED: "to succeed",
    Condition.FINISHED: "to finish",
    Condition.FAILED: "to fail or be cancelled",
}


def condition_met(condition: str, status: str) -> bool:
    if condition == Condition.SUCCEEDED:
        return status == Status.COMPLETED
    if condition == Condition.FINISHED:
        return status in FINISHED
    return status in (Status.FAILED, Status.CANCELLED)


def condition_impossible(condition: str, status: str) -> bool:
    """True once `condition` can never be met: every finished status is final."""
    return status in FINISHED and not condition_met(condition, status)


def waiting_for_dependencies_reason(links: Iterable[tuple[Deployment, str]]) -> str:
    """E.g. "waiting for deployment 41 (running) to succeed", over the unmet links."""
    parts = [
        f"deployment {dependency.pk} ({dependency.status}) {_VERBS[Condition(condition)]}"
        for dependency, condition in links
        if not condition_met(condition, dependency.status)
    ]
    return "waiting for " + "; ".join(parts)


def pending_reason(deployment: Deployment) -> str:
    """The live reason of a pending deployment, from its (prefetched) dependency links."""
    links = [(link.dependency, link.condition) for link in deployment.dependency_links.all()]
    return waiting_for_dependencies_reason(links)
