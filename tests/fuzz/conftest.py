"""Hypothesis profiles for the property suite (issue #10): `ci` by default, `fuzz` for depth.

`ci` is small and derandomized, so `make test` runs the same examples on every machine and a
failure in CI reproduces locally; `make fuzz` (HYPOTHESIS_PROFILE=fuzz) runs thousands of random
examples per property. Properties that need the database run a fifth of a profile's examples
(`tests.fuzz.strategies.DB_EXAMPLES`), because each example costs queries.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Generating deeply nested JSON is slow to shrink and sometimes large; both are the point here.
_SLOW_DATA = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=_SLOW_DATA,
)
settings.register_profile(
    "fuzz",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SLOW_DATA,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
