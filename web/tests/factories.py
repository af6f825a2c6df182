"""Rows for page tests. State only: behaviour goes through the services."""

import factory
from django.utils import timezone

from deployments.models import Condition, Dependency, DeploymentEvent, Status
from deployments.tests.factories import DeploymentFactory


class RunningDeploymentFactory(DeploymentFactory):
    status = Status.RUNNING
    started_at = factory.LazyFunction(timezone.now)


class DependencyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dependency

    dependency = factory.SubFactory(DeploymentFactory)
    dependent = factory.SubFactory(
        DeploymentFactory,
        cluster=factory.SelfAttribute("..dependency.cluster"),
        status=Status.PENDING,
        queued_at=None,
    )
    condition = Condition.SUCCEEDED


class DeploymentEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeploymentEvent

    deployment = factory.SubFactory(DeploymentFactory)
    at = factory.LazyFunction(timezone.now)
    from_status = Status.QUEUED
    to_status = Status.RUNNING
    reason = factory.Sequence(lambda n: f"started: room made by event {n}")
