"""R1 and R2: what the per-key rate limit buys another key, and what it costs every request.

Only the web process runs, as in P1/P2. Two fresh write keys with the settings' default limits
(INGEST_RATE_LIMIT / INGEST_RATE_BURST, as the deployment would have them) are written straight
into the phase's database.

- R1: a quiet key posts /v1/track at a steady rate (open loop); its answer times' p99 alone, then
  again while a flooding key posts at the rate issue #11 saw (5,590 requests in 10 s: 560/s, open
  loop, so the flood does not slow down when answered slowly; most of it is answered 429). Goal:
  flooded p99 at most 2x quiet p99. The quiet key's second run starts once the flood gets its
  first 429, so its burst allowance is spent by then.
- R2 (full run only): /v1/track requests/s, closed loop, with limits on (the bench's key: counted
  on every request, never refused) against a deployment with INGEST_RATE_LIMIT_ENABLED=false.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections import Counter
from collections.abc import Coroutine, Iterator
from typing import Any

import psycopg

from bench import payloads
from bench.context import Row, Run
from bench.deploy import Deployment
from bench.loadgen import ClosedLoopResult, OpenLoopResult, Sent, Target, closed_loop, open_loop, run_async
from bench.stats import ms, percentile

RATIO_GOAL = 2.0
# The flood runs at most this long before the quiet key's run, waiting for its first 429.
FLOOD_WARMUP_MAX = 10.0
# The flood's open connections at most, as one client machine would hold: when the server falls
# behind, the flood's requests beyond these are counted as not sent (-1) instead of piling up
# thousands of sockets, which would measure the load generator.
FLOOD_CONNECTIONS = 64


def _key_create(url: str, name: str) -> str:
    """A server key with the settings' limits, as Admin would issue it; its raw secret."""
    raw = "tm_" + secrets.token_urlsafe(32)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO events_writekey (name, prefix, key_hash, created_at, kind)"
            " VALUES (%s, %s, %s, now(), 'server')",
            (name, raw[:10], hashlib.sha256(raw.encode()).hexdigest()),
        )
    return raw


def _quiet(run: Run, target: Target, prefix: str, seconds: float = 0.0) -> Coroutine[Any, Any, OpenLoopResult]:
    rate, seconds = run.profile.r_quiet_rate, seconds or run.profile.r_seconds
    bodies = payloads.singles(prefix, event=payloads.QUIET_EVENT, with_email=False)
    return open_loop(target, "/v1/track", bodies, rate=rate, count=int(rate * seconds))


def _tracks(target: Target, prefix: str) -> Iterator[tuple[bytes, int]]:
    for _user, body in payloads.singles(prefix, event=payloads.QUIET_EVENT, with_email=False):
        yield target.request("/v1/track", body), 1


async def _flooded(run: Run, quiet: Target, flood: Target) -> tuple[OpenLoopResult, Counter[int]]:
    """The quiet key's run while the other key floods; the flood's answers during that run."""
    # The quiet key is measured once the flood is being refused (its burst spent), so R1 measures
    # a key over its limit, not one still inside its allowance.
    refused = asyncio.Event()
    during: Counter[int] = Counter()

    def heard(sent: Sent) -> None:
        if sent.status == 429:
            refused.set()
        if refused.is_set():
            during[sent.status] += 1

    rate = run.profile.r_flood_rate
    bodies = payloads.singles("r1f", event=payloads.QUIET_EVENT, with_email=False)
    count = int(rate * (FLOOD_WARMUP_MAX + run.profile.r_seconds + 5.0))
    flooding = asyncio.create_task(
        open_loop(flood, "/v1/track", bodies, rate=rate, count=count, max_in_flight=FLOOD_CONNECTIONS, on_answer=heard)
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(refused.wait(), FLOOD_WARMUP_MAX)
    quiet_result = await _quiet(run, quiet, "r1q")
    flood_answers = Counter(during)
    flooding.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await flooding
    return quiet_result, flood_answers


def _p99(result: OpenLoopResult) -> float:
    return percentile([s.answered - s.started for s in result.accepted], 99)


def r1_flood(run: Run, deployment: Deployment, url: str) -> None:
    quiet = Target.from_url(deployment.base_url, _key_create(url, "bench quiet"))
    flood = Target.from_url(deployment.base_url, _key_create(url, "bench flood"))
    run_async(_quiet(run, quiet, "r1w", run.profile.warmup_seconds))
    start = run.monitor.mark()
    alone = run_async(_quiet(run, quiet, "r1a"))
    run.cpu_record("R1 quiet alone", start, run.monitor.mark())
    start = run.monitor.mark()
    flooded, flood_answers = run_async(_flooded(run, quiet, flood))
    run.cpu_record("R1 quiet flooded", start, run.monitor.mark())
    ratio = _p99(flooded) / _p99(alone) if alone.accepted and flooded.accepted else float("nan")
    run.rows.append(
        Row(
            id="R1",
            measure=f"quiet key's /v1/track p99 at {run.profile.r_quiet_rate:g} req/s while another key floods "
            f"at {run.profile.r_flood_rate:g} req/s",
            baseline=f"{ms(_p99(alone))} (no flood)",
            value=f"{ms(_p99(flooded))}{run.noise('R1 quiet alone', 'R1 quiet flooded')}",
            ratio=f"{ratio:.2f}",
            target=f"<= {RATIO_GOAL:g}",
            met="yes" if ratio <= RATIO_GOAL else "**no**",
        )
    )
    statuses = ", ".join(f"{status or 'no answer'}: {n:,}" for status, n in sorted(flood_answers.items()))
    run.detail(
        f"R1: the quiet key's answers alone {alone.statuses()}, flooded {flooded.statuses()}; meanwhile the "
        f"flooding key ({run.profile.r_flood_rate:g} requests/s, open loop, default limits) was answered "
        f"{sum(flood_answers.values()):,} times in {flooded.elapsed:.1f} s ({statuses})."
    )


def _track_rate(run: Run, base_url: str, prefix: str) -> ClosedLoopResult:
    target, connections = Target.from_url(base_url, run.write_key), run.profile.connections
    run_async(closed_loop(target, _tracks(target, prefix + "w"), connections=connections, duration=1.0))
    return run_async(
        closed_loop(target, _tracks(target, prefix), connections=connections, duration=run.profile.p2_seconds)
    )


def r2_cost(run: Run, limited: ClosedLoopResult) -> None:
    with run.deployment("ratelimit-off", hosts=0, env={"INGEST_RATE_LIMIT_ENABLED": "false"}) as deployment:
        start = run.monitor.mark()
        unlimited = _track_rate(run, deployment.base_url, "r2off")
        run.cpu_record("R2 limits off", start, run.monitor.mark())
    on, off = limited.requests_per_second, unlimited.requests_per_second
    cost = (1 / on - 1 / off) * 1e6 if on and off else float("nan")
    run.rows.append(
        Row(
            id="R2",
            measure="/v1/track requests/s with rate limits on (counted, never refused)",
            baseline=f"{off:,.0f} req/s (INGEST_RATE_LIMIT_ENABLED=false)",
            value=f"{on:,.0f} req/s ({cost:+,.0f} µs a request){run.noise('R2 limits on', 'R2 limits off')}",
            ratio=f"{on / off:.2f}" if off else "-",
        )
    )


def ratelimit_phases(run: Run) -> None:
    run.say("R1, R2: a flooding key against a quiet one; the limit's cost per request")
    limited: ClosedLoopResult | None = None
    with run.deployment("ratelimit", hosts=0) as deployment:
        if run.wants("R1"):
            r1_flood(run, deployment, deployment.env["DATABASE_URL"])
        if run.wants("R2") and run.profile.r_cost:
            start = run.monitor.mark()
            limited = _track_rate(run, deployment.base_url, "r2on")
            run.cpu_record("R2 limits on", start, run.monitor.mark())
    if limited is not None:
        r2_cost(run, limited)
