"""Did every acknowledged event's email arrive exactly once? Counted per phase, from the ledger.

Each emailing event has a user (and address) of its own, so the provider's ledger answers it:
an acknowledged event whose address is missing was not delivered, an address or idempotency key
seen twice was sent twice. Not delivered is split by what the rows say: still pending (the event
unprocessed, or its send scheduled or in flight, when the wait ran out) or lost (nothing left
that will ever send it). An address nobody posted, or whose post was refused, counts as
unexpected if it arrives: P4's million seeded sends lie in the future and must stay unsent.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from bench.database import query
from bench.payloads import email_of, user_of
from bench.provider import Ledger
from bench.sendgrid_fast import LEDGER_FLUSH_EVERY

# Longer than the provider's ledger flush interval, with room for a busy event loop.
SETTLE_SECONDS = max(0.5, 10 * LEDGER_FLUSH_EVERY)


@dataclass
class Check:
    phase: str
    expected: int
    delivered: int = 0
    duplicates: int = 0
    duplicate_keys: int = 0
    pending: int = 0
    lost: int = 0
    lost_states: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and self.duplicate_keys == 0 and self.pending == 0

    def line(self) -> str:
        text = (
            f"{self.phase}: {self.expected:,} emails expected, {self.delivered:,} delivered once, "
            f"{self.duplicates} sent twice (by address), {self.duplicate_keys} keys accepted twice, "
            f"{self.pending:,} still pending when the wait ended, {self.lost} lost"
        )
        if self.lost_states:
            text += " (" + ", ".join(f"{state}: {n}" for state, n in self.lost_states.most_common()) + ")"
        return text


def drain_wait(ledger: Ledger, users: Iterable[str], *, timeout: float, label: str = "") -> float:
    """Wait until every user's email arrived or `timeout` passed; return the seconds waited.

    With a label, progress is printed every 10 s: a long wait must not look like a hang.
    """
    remaining = {email_of(u) for u in users}
    total = len(remaining)
    started = time.monotonic()
    last_report = started
    while True:
        ledger.read()
        # Only what is still missing is looked at: P5 waits for hundreds of thousands.
        remaining = {a for a in remaining if a not in ledger.addresses}
        now = time.monotonic()
        if not remaining or now - started >= timeout:
            return now - started
        if label and now - last_report >= 10:
            print(f"bench: {label}: {total - len(remaining):,} of {total:,} emails arrived", flush=True)
            last_report = now
        time.sleep(0.1 if len(remaining) < 10_000 else 0.5)


def check(phase: str, *, url: str, ledger: Ledger, users: Iterable[str]) -> Check:
    """Count deliveries of these users' emails; classify the missing ones from the database at `url`.

    The processes may still be delivering, so the rows are read before the ledger is read for
    the last time: the provider writes its ledger line before it answers (and flushes it within
    LEDGER_FLUSH_EVERY), so a send the rows already call sent is in the ledger by then, and one
    that moves on meanwhile is never mistaken for a lost one.
    """
    wanted = {email_of(u) for u in users}
    ledger.read()
    states = _states(url, [user_of(a) for a in wanted if a not in ledger.addresses])
    time.sleep(SETTLE_SECONDS)
    ledger.read()
    counts = ledger.addresses
    keys = Counter(d.key for d in ledger.entries if d.to in wanted)
    result = Check(phase=phase, expected=len(wanted))
    result.delivered = sum(1 for a in wanted if counts[a] == 1)
    result.duplicates = sum(1 for a in wanted if counts[a] > 1)
    result.duplicate_keys = sum(1 for n in keys.values() if n > 1)
    for address in (a for a in wanted if counts[a] == 0):
        no_event, unprocessed, state = states[user_of(address)]
        if unprocessed or state in ("scheduled", "sending"):
            result.pending += 1
        else:
            result.lost += 1
            result.lost_states["no event" if no_event else state or "no send"] += 1
    return result


def _states(url: str, users: list[str]) -> dict[str, tuple[bool, bool, str | None]]:
    """Per user: (no event stored, event unprocessed, its send's state or None)."""
    if not users:
        return {}
    rows = query(
        url,
        "SELECT u.user_id, e.id IS NULL, e.processed_at IS NULL, s.state FROM unnest(%s::text[]) AS u(user_id)"
        " LEFT JOIN events_event AS e ON e.user_id = u.user_id"
        " LEFT JOIN campaigns_send AS s ON s.event_id = e.id",
        (users,),
    )
    return {user: (bool(no_event), bool(unprocessed), state) for user, no_event, unprocessed, state in rows}


def unexpected(ledger: Ledger, attempted: set[str]) -> int:
    """Emails the provider accepted for addresses no acknowledged or attempted post asked for."""
    ledger.read()
    return sum(n for address, n in ledger.addresses.items() if address not in attempted)
