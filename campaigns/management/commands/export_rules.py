"""`manage.py export_rules [--output FILE]`: all rules and templates as JSON, for version control."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.authoring.transfer import document_dumps, rules_export
from triggermail.replica import read_preferring_replica


class Command(BaseCommand):
    help = "Writes every rule and template as JSON (to stdout unless --output), for import_rules to read back."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.")
        parser.add_argument(
            "--primary",
            action="store_true",
            help="Read the primary even when DATABASE_REPLICA_URL is set (an export right after a change).",
        )

    def handle(self, *args: Any, output: str | None = None, primary: bool = False, **options: Any) -> None:
        # An export changes nothing: it may read the replica, and says so (on stderr, beside the JSON).
        if primary:
            document = rules_export()
        else:
            document, source = read_preferring_replica(rules_export)
            if source.replica or source.fallback:
                self.stderr.write(f"Read from the {source}.")
        text = document_dumps(document)
        if output in (None, "-"):
            self.stdout.write(text, ending="")
            return
        assert output is not None
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc.strerror}") from exc
        self.stdout.write(
            f"Wrote {len(document['templates'])} templates and {len(document['rules'])} rules to {output}."
        )
