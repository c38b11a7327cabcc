"""A chaos run's settings, parsed from `python -m chaos.run`'s command line.

Its own module because the run (chaos.run), the deployment it settles (chaos.settle) and the report
(chaos.report) all need it, and chaos.run imports the other two.
"""

from __future__ import annotations

import argparse
import os
import random
from dataclasses import dataclass

DESCRIPTION = "The real deployment under faults, and proof that nobody got an email twice."


@dataclass(frozen=True)
class Config:
    events: int
    duration: float
    seed: int
    kill_every: tuple[float, float]
    mid_call_kills: float
    pg_drops: int
    cart_delay: int
    grace: float
    resend_after: float
    policy: str
    admin_url: str
    # Where the processes reach the database through PgBouncer (CHAOS_POOLER_URL, any database name;
    # `make pgbouncer` starts one on 6432), or "" for directly, as admin_url does.
    pooler_url: str
    database: str
    keep_db: bool


def config_parse(argv: list[str]) -> Config:
    parser = argparse.ArgumentParser(prog="python -m chaos.run", description=DESCRIPTION)
    parser.add_argument("--events", type=int, default=5000, help="distinct events to post (default 5000)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds over which events are posted")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--kill-every", default="4,10", help="seconds between kills: MIN,MAX (default 4,10)")
    parser.add_argument(
        "--mid-call-kills", type=float, default=0.01, help="share of acceptances whose worker is killed before it hears"
    )
    parser.add_argument("--pg-drops", type=int, default=2, help="PostgreSQL connection drops during the run")
    parser.add_argument("--cart-delay", type=int, default=8, help="the cart recovery rule's delay in seconds")
    parser.add_argument("--grace", type=float, default=20.0, help="UNKNOWN_GRACE_SECONDS for the run")
    parser.add_argument(
        "--resend-after", type=float, default=12.0, help="AMBIGUOUS_RESEND_AFTER for the run (default 12)"
    )
    parser.add_argument(
        "--policy", default="resend_when_webhook_live", help="AMBIGUOUS_SEND_POLICY for the run (or ask_a_person)"
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the run's database for inspection")
    args = parser.parse_args(argv)
    low, high = (float(x) for x in args.kill_every.split(","))
    return Config(
        events=args.events,
        duration=args.duration,
        seed=args.seed if args.seed is not None else random.randrange(2**31),
        kill_every=(low, high),
        mid_call_kills=args.mid_call_kills,
        pg_drops=args.pg_drops,
        cart_delay=args.cart_delay,
        grace=args.grace,
        resend_after=args.resend_after,
        policy=args.policy,
        admin_url=os.environ.get("CHAOS_ADMIN_URL", "postgres://root@127.0.0.1:5432/postgres"),
        pooler_url=os.environ.get("CHAOS_POOLER_URL", ""),
        database=os.environ.get("CHAOS_DATABASE_NAME", f"triggermail_chaos_{os.getpid()}"),
        keep_db=args.keep_db,
    )
