"""Which requests the per-user limits count: plain data, importable from anywhere.

`hypervisor.ratelimits` applies them to sessions in middleware; API tokens, which DRF
authenticates after every middleware has run, apply them in `accounts.authentication`
(a module DRF imports while it builds its settings, so it cannot import
`hypervisor.ratelimits`, which needs DRF's views).
"""

import re

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The reads whose cost grows with what an organization holds: a cluster's queue, the
# deployment lists, the dashboards, deployments lists and deployment pages with their
# live parts (polled).
EXPENSIVE_READS = re.compile(
    r"^/(?:api/v1/clusters/[0-9]+/queue|api/v1/deployments|orgs/[0-9]+(?:/live|/deployments)?"
    r"|deployments/[0-9]+(?:/live)?)/?$"
)
