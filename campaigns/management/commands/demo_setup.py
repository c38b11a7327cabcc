"""`manage.py demo_setup`: the demo campaign, an admin login and a write key, each only if missing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from campaigns.authoring.demo import DEFAULT_BASE_URL, demo_setup


class Command(BaseCommand):
    help = (
        "Prepares a fresh installation for a first try: imports the demo campaign when there are no rules, "
        "creates the superuser 'admin' and a write key when there are none, and prints a curl command to "
        "post a first event. Safe to run on every start."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url", default=DEFAULT_BASE_URL, help="Where the web process answers, for the printed links."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        for line in demo_setup(base_url=options["base_url"]).lines():
            self.stdout.write(line)
