"""What the runtime app tells the layers above it, without knowing them.

`runtime_reachable_again` is sent (with `runtime_id`) when a runtime that was
unreachable answers again; the scheduler listens and runs passes over its clusters,
whose waiting deployments were held while it was down.
"""

from django.dispatch import Signal

runtime_reachable_again = Signal()
