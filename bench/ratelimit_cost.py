"""`python -m bench.ratelimit_cost`: what the ingest's rate limit costs one /v1/track request.

R2 of `make bench` measures the same through gunicorn, where other load on the machine blurs a
difference of a fraction of a millisecond. This posts track calls in-process (Django's test
client, no HTTP server) to a test database made for the run (DATABASE_URL's server, `test_` + its
name, dropped after), one request at a time, and reports per request the median wall time and
this process's CPU time, for: limits off, limits on (counted in the database, in Redis), and a key
refused 429 (the process already knows its refusal).

    DATABASE_URL=postgres://root@127.0.0.1:5432/test TEST_DATABASE_NAME=test_ratelimit_cost \\
        SECRET_KEY=x python -m bench.ratelimit_cost [requests per case, default 2000]
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

UNLIMITED: dict[str, Any] = {"rate_limit": 1e9, "rate_burst": 10**9}  # counted, never refused
CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("limits off", {"INGEST_RATE_LIMIT_ENABLED": False}, {}),
    (
        "limits on, database, a take per request",
        {"INGEST_RATE_LIMIT_STORE": "database", "INGEST_RATE_LEASE_SECONDS": 0},
        UNLIMITED,
    ),
    ("limits on, database, leases (default)", {"INGEST_RATE_LIMIT_STORE": "database"}, UNLIMITED),
    (
        "limits on, Redis, a take per request",
        {"INGEST_RATE_LIMIT_STORE": "redis", "INGEST_RATE_LEASE_SECONDS": 0},
        UNLIMITED,
    ),
    ("limits on, Redis, leases (default)", {"INGEST_RATE_LIMIT_STORE": "redis"}, UNLIMITED),
    ("refused (429)", {"INGEST_RATE_LIMIT_STORE": "database"}, {"rate_limit": 0.001, "rate_burst": 1}),
]


def _poster(client: Any, raw: str) -> Callable[[int], int]:
    auth = "Basic " + base64.b64encode(f"{raw}:".encode()).decode()

    def post(n: int) -> int:
        body = {"event": "cost_probe", "userId": f"u{n % 100}", "messageId": str(uuid.uuid4())}
        response = client.post("/v1/track", json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth)
        return int(response.status_code)

    return post


def _case(client: Any, overrides: dict[str, Any], limits: dict[str, Any], count: int) -> tuple[float, float, int]:
    from django.test import override_settings

    from events.models import WriteKey

    _, raw = WriteKey.issue(name=f"cost {uuid.uuid4().hex[:6]}", **limits)
    post = _poster(client, raw)
    walls, cpus, statuses = [], [], set()
    with override_settings(**overrides):
        for n in range(count // 10):  # warm-up (and, for the refused case, the first refusal)
            post(n)
        for n in range(count):
            wall, cpu = time.perf_counter(), time.process_time()
            statuses.add(post(n))
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    assert len(statuses) == 1, statuses
    return statistics.median(walls) * 1e6, statistics.fmean(cpus) * 1e6, statuses.pop()


def main(count: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggermail.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0)
    try:
        client = Client()
        print(f"{count:,} requests per case, {connection.vendor} ({name}), one at a time, in-process")
        print("| case | status | median wall µs/request | mean CPU µs/request (this process) |")
        print("|---|---|---|---|")
        # Every case twice, interleaved, so a burst of other load on the machine shows as a
        # difference between a case's two rows rather than as the limit's cost.
        for label, overrides, limits in CASES + CASES:
            wall, cpu, status = _case(client, overrides, limits, count)
            print(f"| {label} | {status} | {wall:,.0f} | {cpu:,.0f} |")
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
