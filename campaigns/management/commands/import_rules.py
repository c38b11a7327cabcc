"""`manage.py import_rules FILE [--dry-run] [--prune]`: make the rules and templates match a file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.authoring.history import rules_import_recorded
from campaigns.authoring.transfer import document_loads
from campaigns.authoring.transfer_validation import RulesFileError


class Command(BaseCommand):
    help = (
        "Creates or updates (by name) the templates and rules in FILE, as written by export_rules. "
        "The file is checked first: if anything is wrong nothing is changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE", help="A JSON file from export_rules; - reads stdin.")
        parser.add_argument("--dry-run", action="store_true", help="Say what would change without writing.")
        parser.add_argument(
            "--prune",
            action="store_true",
            help="Also delete rules that are not in FILE (rules with sends are deactivated instead) "
            "and templates that no remaining rule uses.",
        )

    def handle(self, *args: Any, file: str, dry_run: bool, prune: bool, **options: Any) -> None:
        text = self._read(file)
        try:
            # Recorded in each rule's and template's history as "imported", by no one in particular.
            report = rules_import_recorded(document_loads(text), dry_run=dry_run, prune=prune)
        except RulesFileError as exc:
            problems = "\n".join(f"  {error}" for error in exc.errors)
            raise CommandError(f"{file}: nothing was imported, because:\n{problems}") from exc
        for line in report.lines():
            self.stdout.write(line)

    def _read(self, file: str) -> str:
        if file == "-":
            return sys.stdin.read()
        try:
            return Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {file}: {exc}") from exc
