"""`python -m bench.claim_cpu`: this process's CPU per send for a claim (campaigns.sending.claiming).

S spends most of its worker CPU claiming: reading the due sends with their contacts and events,
the send-time checks, building each message, reserving the keys and moving the sends to `sending`.
This seeds sends shaped as S's (one contact and one event each, from the benchmark's immediate
rule, due now) on a fresh PostgreSQL database and claims them `--sends` at a time, as a delivery
task's slice does; it prints the least CPU per send over --repeat passes of CLAIMS claims (CPU time
of this process only, so PostgreSQL's share is not in it), and with --profile the functions
cProfile finds taking the most of one more pass.

    python -m bench.claim_cpu [--sends 50] [--repeat 5] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import secrets
import sys
import time
from datetime import UTC, datetime

from bench import payloads
from bench.database import prepared_database

CLAIMS = 20


def _seed(label: str, count: int) -> list[int]:
    """`count` due sends of the immediate rule, each with a contact and an event of its own."""
    from campaigns.models import Rule, Send
    from events.models import Contact, Event

    rule = Rule.objects.get(trigger_event=payloads.NOW_EVENT)
    now = datetime.now(UTC)
    users = [f"claim-{label}-{n}" for n in range(count)]
    contacts = Contact.objects.bulk_create(
        Contact(user_id=user, email=payloads.email_of(user), traits={"first_name": "Bench"}) for user in users
    )
    events = [
        Event.objects.create(type="track", name=payloads.NOW_EVENT, message_id=f"m-{user}", user_id=user,
                             properties=payloads.track(user, payloads.NOW_EVENT)["properties"],
                             occurred_at=now, received_at=now)
        for user in users
    ]  # fmt: skip
    sends = Send.objects.bulk_create(
        Send(rule=rule, contact=contact, event=event, triggered_at=now, due_at=now, dedupe_key=f"claim-{event.pk}")
        for contact, event in zip(contacts, events, strict=True)
    )
    return [send.pk for send in sends]


def _pass(label: str, sends: int, profiler: cProfile.Profile | None = None) -> float:
    """CPU seconds per send over CLAIMS claims of `sends` sends each (seeding not counted)."""
    from django.utils import timezone

    from campaigns.sending.claiming import sends_claim

    ids = _seed(label, CLAIMS * sends)
    if profiler is not None:
        profiler.enable()
    started = time.process_time()
    claimed = 0
    for n in range(CLAIMS):
        claimed += len(sends_claim(ids[n * sends : (n + 1) * sends], now=timezone.now()))
    spent = time.process_time() - started
    if profiler is not None:
        profiler.disable()
    # Every seeded send is due and free: a claim that refused some would time a different path.
    assert claimed == len(ids), f"claimed {claimed} of {len(ids)} sends"
    return spent / claimed


def _measure(sends: int, repeat: int, profile: bool) -> None:
    _pass("warm", sends)
    best = min(_pass(f"p{n}", sends) for n in range(repeat))
    print(f"sends_claim, {sends} sends a claim: {best * 1e6:.0f} µs CPU per send (best of {repeat} passes)")
    if profile:
        profiler = cProfile.Profile(time.process_time)
        _pass("profiled", sends, profiler)
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.claim_cpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=50, help="sends per claim (a delivery task's slice is 50)")
    parser.add_argument("--repeat", type=int, default=5, help=f"passes of {CLAIMS} claims; the best is printed")
    parser.add_argument("--profile", action="store_true", help="also print cProfile's view of one more pass")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
    with prepared_database("claim"):
        _measure(args.sends, args.repeat, args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
