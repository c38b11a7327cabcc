"""How big each phase is: `make bench` (FULL, about 11 minutes) and `make bench-quick` (QUICK, CI).

The quick profile keeps every phase and every correctness check but shrinks the load, so that
CI learns within two minutes whether an event was lost or sent twice; its timings are printed
for information only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Profile:
    name: str
    # Closed-loop connections for P1 and P2 and their baselines: enough to keep every gunicorn
    # worker busy while the generator handles the answers, few enough not to queue for nothing.
    connections: int = 8
    warmup_seconds: float = 2.0
    p1_seconds: float = 15.0
    p1_batch: int = 100
    # P2 measures /v1/track and its two baselines in turn, p2_seconds each, p2_rounds times (bench.ingest).
    p2_seconds: float = 8.0
    p2_rounds: int = 3
    p3_rate: float = 200.0
    p3_seconds: float = 45.0
    p3_drain: float = 20.0
    # P3R: P3 again with the Redis broker (issue #15 reports it beside the ORM broker's figure).
    p3_redis: bool = True
    p4_pending: int = 1_000_000
    p4_contacts: int = 100_000
    p4_sends: int = 3000
    p4_lead: float = 10.0  # the first delayed send falls due this long after posting starts
    p4_spread: float = 20.0  # ... and the last this much later
    p4_drain: float = 20.0
    p5_rate: float = 1000.0
    p5_seconds: float = 300.0
    p5_batch: int = 50
    # One event in ten sends an email, as in a lifecycle stream (views, carts, orders, a signup now
    # and then): P5 measures events end to end. What the host sustains when every event is an email
    # is S's 1-host rate; the quick run (200 events/s) keeps every event an email.
    p5_triggering: float = 0.1
    p5_sample_every: float = 2.0
    p5_warmup: float = 30.0  # left out of the steady window
    p5_drain: float = 30.0
    # P3, P4 and P5 on one deployment (quick), or each on fresh processes and database (full).
    shared_deployment: bool = False
    scaling_events: int = 10_000
    scaling_timeout: float = 40.0
    # The host counts S compares; `--s-hosts 1` measures one host alone (its CPU per email) while profiling.
    scaling_hosts: tuple[int, ...] = (1, 2)
    provider_latency: float = 0.05
    # R1: the quiet key's steady rate and how long it is measured alone and flooded; R2 runs or not.
    r_quiet_rate: float = 50.0
    r_flood_rate: float = 560.0
    r_seconds: float = 15.0
    r_cost: bool = True
    fail_on_pending: bool = False

    def with_options(self, **changes: object) -> Profile:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


FULL = Profile(name="full")

QUICK = Profile(
    name="quick",
    warmup_seconds=1.0,
    p1_seconds=4.0,
    p2_seconds=3.0,
    p2_rounds=1,
    p3_seconds=8.0,
    p3_drain=30.0,
    p3_redis=False,
    p4_pending=20_000,
    p4_contacts=5_000,
    p4_sends=300,
    p4_lead=5.0,
    p4_spread=5.0,
    p4_drain=30.0,
    p5_rate=200.0,
    p5_seconds=15.0,
    p5_batch=20,
    p5_triggering=1.0,
    p5_sample_every=1.0,
    p5_warmup=3.0,
    p5_drain=45.0,
    shared_deployment=True,
    scaling_events=1500,
    scaling_timeout=30.0,
    # R1 in about 10 s (two 3-second windows, a warm-up, the web's start); no R2.
    r_seconds=3.0,
    r_cost=False,
    # CI must hear about an email that never came, not only about one that came twice.
    fail_on_pending=True,
)

PROFILES = {"full": FULL, "quick": QUICK}
