"""Where P3's time goes: each email's way from its event's acknowledgement to the provider, per stage.

Read from the rows after the run (every timestamp is taken by a process on this machine, so one
clock): the 200 reached the load generator (`acked`), matching of its batch began
(`events_event.processed_at`), a worker began claiming the send (`campaigns_send.sending_started_at`),
the provider received the request (the ledger's `received_at`, taken before its simulated answer time).
Matching began can precede the 200's arrival: the dispatcher may start on a committed event before
the generator has read the answer. The stages' p99s do not add up to the total's: each is taken alone.
"""

from __future__ import annotations

from bench import payloads
from bench.database import query
from bench.stats import ms, percentile

STAGES = (
    ("accepted → matching", "wake-up, gather, claim of the event batch"),
    ("matching → claiming", "match, commit, queue hop, a worker picks the task up"),
    ("claiming → provider", "claim transaction, message, HTTP request"),
)

SQL = """
SELECT e.user_id, extract(epoch FROM e.processed_at), extract(epoch FROM s.sending_started_at)
FROM campaigns_send AS s JOIN events_event AS e ON e.id = s.event_id
WHERE e.message_id LIKE %s AND s.sending_started_at IS NOT NULL
"""


def stage_breakdown(url: str, *, acked: dict[str, float], received: dict[str, float], prefix: str) -> str:
    """One line: p50 / p99 of each stage over the sends of events whose message id starts with `prefix`."""
    spans: list[list[float]] = [[] for _ in STAGES]
    for user, matching, claiming in query(url, SQL, (f"m-{prefix}-%",)):
        arrived = received.get(payloads.email_of(user))
        if user not in acked or arrived is None:
            continue
        points = (acked[user], float(matching), float(claiming), arrived)
        for i, span in enumerate(spans):
            span.append(points[i + 1] - points[i])
    cells = [
        f"{name} ({what}) p50 {ms(percentile(s, 50))} / p99 {ms(percentile(s, 99))}"
        for (name, what), s in zip(STAGES, spans, strict=True)
    ]
    return f"n={len(spans[0]):,}: " + "; ".join(cells)
