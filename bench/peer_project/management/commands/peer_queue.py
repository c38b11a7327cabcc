"""`peer_queue --count N --prefix peer`: queue N pre-rendered emails in post_office, one address each.

The emails are those TriggerMail sends in the benchmark's S phase (bench.database.rules_seed's
template, rendered for the bench's contacts): same sender, subject and text body, to
`<prefix>-<n>@bench.example`, so the provider's ledger counts each email by its address.
`mail.send_many` is post_office's fastest documented way in: one bulk INSERT per chunk.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from post_office import mail

SUBJECT = "Hello Bench, about your pro plan"
BODY = "Hi Bench,\n\nYour cart holds 3 items.\n"
CHUNK = 1000


class Command(BaseCommand):
    help = "Queue pre-rendered emails for the benchmark's peer."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--prefix", required=True)

    def handle(self, *args: Any, count: int, prefix: str, **options: Any) -> None:
        for start in range(0, count, CHUNK):
            mail.send_many(
                [
                    {
                        "recipients": [f"{prefix}-{n}@bench.example"],
                        "subject": SUBJECT,
                        "message": BODY,
                        "priority": "medium",
                    }
                    for n in range(start, min(count, start + CHUNK))
                ]
            )
        self.stdout.write(f"queued {count} emails")
