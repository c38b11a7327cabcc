"""bench.baseline.settings with the one-INSERT view (bench.baseline.insert_urls) as its URLconf.

Without Django's connection health check, as /v1/track runs by default (INGEST_DATABASE_HEALTH_CHECKS
false): the baseline is one round trip per request, the INSERT, as in issue #15's measurement.
"""

from __future__ import annotations

from bench.baseline.settings import *  # noqa: F403
from bench.baseline.settings import DATABASES

ROOT_URLCONF = "bench.baseline.insert_urls"
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
