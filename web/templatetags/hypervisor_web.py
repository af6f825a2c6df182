"""Filters for the pages: resources and durations as people read them."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from deployments.models import Deployment

register = template.Library()


@register.filter
def requests(deployment: Deployment) -> str:
    """A deployment's resource request: `2.5 CPU · 4 GiB · 1 GPU`."""
    return deployment.resources.in_line()


@register.filter
def capacity(cluster) -> str:
    return cluster.capacity.in_line()


@register.filter
def ago(moment: datetime | None) -> str:
    """`just now`, `5 minutes ago`, `2 hours ago` (the page refreshes itself)."""
    if moment is None:
        return "—"
    if timezone.now() - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment)} ago"


@register.filter
def actor_note(event) -> str:
    """`by bob`, `by the scheduler`, or nothing when the reason already says who
    (`failed by bob`): never "failed by bob by bob"."""
    who = event.actor.get_username() if event.actor_id else "the scheduler"
    by = f"by {who}"
    return "" if event.reason == by or event.reason.endswith(f" {by}") else by
