"""TriggerMail's settings (database, middleware, everything) with a one-view URLconf.

P2 compares the real /v1/track against what this stack costs with no application work at all,
so everything but the view must be the same: settings, middleware, gunicorn command line.
"""

from __future__ import annotations

from triggermail.settings import *  # noqa: F403

ROOT_URLCONF = "bench.baseline.urls"
