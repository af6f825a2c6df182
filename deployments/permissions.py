"""Who may act on deployments: the rules of API.md's role table, written once.

The API, the pages and anything else that offers these actions ask here, with the
caller's permissions in the deployment's organization (`orgs.permissions`).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from deployments.models import Deployment

# add_deployment: create deployments and complete/fail/cancel one's own (developers up).
SUBMIT = "deployments.add_deployment"
# change_deployment: complete/fail/cancel anyone's (owners and admins).
ACT_ON_ANY = "deployments.change_deployment"


def may_submit(*, permissions: frozenset[str]) -> bool:
    """Whether the caller may create deployments in the organization."""
    return SUBMIT in permissions


def may_act_on(
    *, permissions: frozenset[str], deployment: Deployment, user: AbstractBaseUser
) -> bool:
    """Complete, fail or cancel: owners and admins on any deployment, developers on
    their own, viewers on none."""
    if ACT_ON_ANY in permissions:
        return True
    return may_submit(permissions=permissions) and deployment.created_by_id == user.pk
