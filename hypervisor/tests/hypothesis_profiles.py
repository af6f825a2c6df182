"""Hypothesis profiles for the suite, chosen by the HYPOTHESIS_PROFILE environment variable.

- `ci` (the default, what `make test` and CI run): derandomized. Every run draws the
  same examples, so a red build names a bug in the commit under test, never luck; a
  property that finds nothing on this fixed sample still has `explore` for fresh draws.
- `explore` (by hand: `HYPOTHESIS_PROFILE=explore make test PYTEST_ARGS=...`): randomized,
  `HYPOTHESIS_EXPLORE_SCALE` (default 10) times the examples of each test, and the
  failures it finds kept in `.hypothesis/examples` so that the next run replays them first.

- `mutation` (`make mutation`): `ci`'s examples without the shrink phase. A mutant needs
  one failing example, not the smallest: shrinking one took minutes per mutant.

All print the `@reproduce_failure(...)` blob of a failure, and the falsifying example.
Tests that fix their own `max_examples` wrap the number in `scaled(n)`.
"""

from __future__ import annotations

import os

from hypothesis import Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
EXPLORE_SCALE = int(os.environ.get("HYPOTHESIS_EXPLORE_SCALE", "10"))

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile(
    "mutation", parent=settings.get_profile("ci"), phases=[Phase.explicit, Phase.generate]
)
settings.register_profile(
    "explore",
    derandomize=False,
    database=DirectoryBasedExampleDatabase(".hypothesis/examples"),
    print_blob=True,
    max_examples=100 * EXPLORE_SCALE,
)


def load() -> None:
    """Load the profile HYPOTHESIS_PROFILE names; an unknown name is an error."""
    settings.load_profile(PROFILE)


def scaled(examples: int) -> int:
    """A test's own example count under the current profile."""
    return examples * EXPLORE_SCALE if PROFILE == "explore" else examples
