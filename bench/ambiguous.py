"""How the resend sweep's queries behave on big tables: EXPLAIN ANALYZE on PostgreSQL.

On a PostgreSQL database of its own (created and dropped like bench.dashboard's), fills in
`--sends` sends made one every 10 ms up to now (one in 10,000 left `unknown`, the rest `sent`)
and three provider events per sent send (received 3-5 s after the attempt, in received order,
as the webhook writes them), then prints the plans and times of:

- the candidates: unknown sends past AMBIGUOUS_RESEND_AFTER with no event of their own;
- `webhook_live_after` for the newest of them (the webhook live: the first rows match);
- `webhook_live_after` while the webhook lags: every event received since the attempt is for an
  earlier send, so no row matches (here: the events of the data's last `--lag` seconds).

    python -m bench.ambiguous [--sends 300000] [--lag 60]
"""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from bench.database import bench_database

POPULATE = """
INSERT INTO campaigns_send (rule_id, contact_id, triggered_at, dedupe_key, state, reason, due_at, attempts,
  sending_started_at, sent_at, to_email, provider_message_id, last_error, created_at, updated_at, latency_kind)
SELECT %(rule)s, %(contact)s, at, 'k' || i, CASE WHEN i %% 10000 = 0 THEN 'unknown' ELSE 'sent' END, '', at, 1,
  at, at, '', '', '', now(), now(), ''
FROM generate_series(%(sends)s, 1, -1) AS i, LATERAL (SELECT now() - i * interval '10 ms' AS at) AS t;

INSERT INTO campaigns_providerevent (event_id, event_type, send_id, key, provider_message_id, recipient,
  reject_reason, description, occurred_at, received_at, payload)
SELECT 'e' || s.id || '-' || n, 'delivered', s.id, s.dedupe_key, '', '', '', '',
  s.sending_started_at, s.sending_started_at + (2 + n) * interval '1 s', '{}'
FROM campaigns_send s, generate_series(1, 3) AS n WHERE s.state = 'sent'
ORDER BY s.sending_started_at + (2 + n) * interval '1 s';
"""


def explain(sql: str, params: Sequence[Any]) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=300_000)
    parser.add_argument("--lag", type=float, default=60.0)
    args = parser.parse_args()
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(32)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggermail.settings")
    with bench_database("postgres") as url:
        os.environ["DATABASE_URL"] = url
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        _run(args)


def _run(args: argparse.Namespace) -> None:
    from django.db import connection
    from django.db.models import Exists, Max, OuterRef
    from django.utils import timezone

    from campaigns.models import ProviderEvent, Rule, Send, Template
    from campaigns.sending.ambiguous import LIVENESS_EVENTS, webhook_live_after
    from events.models import Contact

    template = Template.objects.create(name="welcome template", subject="Welcome", text_body="Hello")
    rule = Rule.objects.create(name="welcome", trigger_event="user_signup", template=template)
    contact = Contact.objects.create(user_id="u1", email="u1@example.com")
    with connection.cursor() as cursor:
        cursor.execute(POPULATE, {"rule": rule.pk, "contact": contact.pk, "sends": args.sends})
        cursor.execute("ANALYZE")
    print(f"{Send.objects.count():,} sends, {ProviderEvent.objects.count():,} provider events")
    now = timezone.now()
    candidates = Send.objects.filter(state="unknown", resend_of__isnull=True, sending_started_at__lt=now).filter(
        ~Exists(ProviderEvent.objects.filter(send_id=OuterRef("pk")))
    )
    print("candidates:\n" + explain(*candidates.values_list("pk")[:100].query.sql_with_params()))
    newest = candidates.order_by("-sending_started_at").values_list("sending_started_at", flat=True).first()
    assert newest is not None
    print(f"webhook_live_after(newest unknown attempt) → {webhook_live_after(newest, now=now)}")
    # The lag is simulated at the end of the data: the events of its last `lag` seconds are all read.
    end = ProviderEvent.objects.aggregate(end=Max("received_at"))["end"]
    assert end is not None
    for label, attempted_at, later_than, until in [
        ("webhook live", newest, newest, now),
        (f"webhook lagging {args.lag:.0f} s", end - timedelta(seconds=args.lag), end, end),
    ]:
        # webhook_live_after's query, with the sends' bound apart so that the lag can be simulated.
        latest = (
            ProviderEvent.objects.filter(received_at__gt=attempted_at, received_at__lte=until, send__isnull=False)
            .order_by("-received_at")
            .values("send_id")[:LIVENESS_EVENTS]
        )
        live = Send.objects.filter(pk__in=latest, sending_started_at__gt=later_than).values("pk")[:1]
        print(f"{label}:\n" + explain(*live.query.sql_with_params()))


if __name__ == "__main__":
    main()
