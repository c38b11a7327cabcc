"""`manage.py demo_setup`: the demo campaign, an admin login and a write key, each only if missing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from campaigns.demo import demo_setup


class Command(BaseCommand):
    help = (
        "Prepares a fresh installation for a first try: imports the demo campaign when there are no rules, "
        "creates the superuser 'admin' and a write key when there are none, and prints a curl command to "
        "post a first event. Safe to run on every start."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        for line in demo_setup().lines():
            self.stdout.write(line)
