"""The history of rules and templates: who changed what, when, and going back to an earlier version.

Every change made in Admin or by `import_rules` leaves a ChangeRecord holding the whole object
before and after, in the campaign file's format (`campaigns.authoring.transfer`). Restoring a version is
importing that snapshot for the one object, so it is checked exactly like a file, and it is itself
recorded. Rules are read per batch of events, so a restored version is live on the next event.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from campaigns.authoring.transfer import ImportReport, rule_entry, rules_import, template_entry
from campaigns.authoring.transfer_validation import FORMAT_VERSION, RulesFileError
from campaigns.models import ChangeRecord, Rule, Template

Snapshot = dict[str, Any]
RULE = ChangeRecord.Kind.RULE
TEMPLATE = ChangeRecord.Kind.TEMPLATE
# The action of the version 1 recorded for an object whose history would otherwise start with a
# change (made before history was kept, or imported without a record): the state before that change.
BASELINE_ACTION = "state before the first recorded change"
# Two changes to one object at the same moment both read the same next number; the unique
# constraint refuses the second, which reads again.
VERSION_ATTEMPTS = 5


class RestoreError(ValueError):
    """A version that cannot be restored now, with the reason in words for the marketer."""


def snapshot_load(kind: str, object_id: int) -> Snapshot | None:
    """The object as stored now (its name included), or None when it no longer exists.

    Always read from the database: by the time the admin saves, the form has already copied the new
    values onto its object, and an import replaces conditions behind any prefetched list.
    """
    if kind == RULE:
        rule = Rule.objects.select_related("template").prefetch_related("conditions").filter(pk=object_id).first()
        return None if rule is None else {"name": rule.name, **rule_entry(rule)}
    template = Template.objects.filter(pk=object_id).first()
    return None if template is None else {"name": template.name, **template_entry(template)}


def change_record(*, kind: str, object_id: int, action: str, user: str, before: Snapshot | None) -> ChangeRecord | None:
    """Record the change that led from `before` to the object as stored now (None once deleted).

    Nothing is recorded when nothing changed, e.g. a rule saved again without edits. The first
    record of an object that existed before (`before` is set) is preceded by a version 1 holding
    `before`, so the history can always go back to the state before the first change.
    """
    after = snapshot_load(kind, object_id)
    if after == before:
        return None
    name = str((after or before or {}).get("name", ""))[:100]
    with transaction.atomic():
        if before is not None and not ChangeRecord.objects.filter(kind=kind, object_id=object_id).exists():
            _record_add(kind=kind, object_id=object_id, object_name=name, action=BASELINE_ACTION, user="",
                        before=None, after=before)  # fmt: skip
        return _record_add(kind=kind, object_id=object_id, object_name=name, action=action, user=user,
                           before=before, after=after)  # fmt: skip


def _record_add(*, kind: str, object_id: int, **fields: Any) -> ChangeRecord:
    """A record with the object's next version number (1 for its first)."""
    attempts = 0
    while True:
        records = ChangeRecord.objects.filter(kind=kind, object_id=object_id)
        version = (records.aggregate(last=Max("version"))["last"] or 0) + 1
        try:
            with transaction.atomic():
                return ChangeRecord.objects.create(kind=kind, object_id=object_id, version=version, **fields)
        except IntegrityError:
            attempts += 1
            if attempts == VERSION_ATTEMPTS:
                raise


def rules_active_set(rules: QuerySet[Rule], *, active: bool, user: str) -> int:
    """Pause (or resume) the rules, each with its own record; returns how many changed."""
    changed = 0
    with transaction.atomic():
        for pk in rules.filter(active=not active).values_list("pk", flat=True):
            before = snapshot_load(RULE, pk)
            # Conditional, so a rule someone else paused meanwhile is neither counted nor recorded twice.
            if Rule.objects.filter(pk=pk, active=not active).update(active=active, updated_at=timezone.now()):
                change_record(kind=RULE, object_id=pk, action="resumed" if active else "paused", user=user,
                              before=before)  # fmt: skip
                changed += 1
    return changed


def _snapshots_all() -> dict[tuple[str, str], tuple[int, Snapshot]]:
    """(kind, name) → (id, snapshot) of every rule and template, as `rules_export` reads them."""
    rules = Rule.objects.select_related("template").prefetch_related("conditions")
    snapshots: dict[tuple[str, str], tuple[int, Snapshot]]
    snapshots = {(RULE, r.name): (r.pk, {"name": r.name, **rule_entry(r)}) for r in rules}
    for template in Template.objects.all():
        snapshots[(TEMPLATE, template.name)] = (template.pk, {"name": template.name, **template_entry(template)})
    return snapshots


def rules_import_recorded(
    document: Any, *, dry_run: bool = False, prune: bool = False, user: str = "", action: str = "imported"
) -> ImportReport:
    """`rules_import`, with a record for every template and rule it created, changed or deleted."""
    with transaction.atomic():
        # Taken before the import, so each record can say what the object was before the file.
        before = _snapshots_all() if not dry_run else {}
        report = rules_import(document, dry_run=dry_run, prune=prune)
        for change in [] if dry_run else report.changes:
            if change.action == "keep":
                continue
            known = before.get((change.kind, change.name))
            model = Rule if change.kind == RULE else Template
            object_id = known[0] if known else model.objects.get(name=change.name).pk
            deleted = change.action == "delete"
            change_record(kind=change.kind, object_id=object_id, action="deleted by import" if deleted else action,
                          user=user, before=known[1] if known else None)  # fmt: skip
    return report


def version_restore(record: ChangeRecord, *, user: str) -> ChangeRecord | None:
    """Make the object as it was right after `record`; None when it already is.

    Goes through `rules_import` with a one-object file, so the version is validated like any file
    (its template must still exist, for instance) and written the same way.
    """
    if record.after is None:
        raise RestoreError(f"Version #{record.version} is the deletion; there is nothing to bring back.")
    model: type[Rule] | type[Template] = Rule if record.kind == RULE else Template
    entry = dict(record.after)
    name = str(entry.pop("name"))
    with transaction.atomic():
        current = model.objects.select_for_update().filter(pk=record.object_id).first()
        if current is None:
            raise RestoreError(f"This {record.kind} no longer exists.")
        before = snapshot_load(record.kind, record.object_id)
        if current.name != name:
            # The file matches rows by name, so the row takes the version's name first.
            if model.objects.filter(name=name).exclude(pk=current.pk).exists():
                raise RestoreError(f"Another {record.kind} is now called {name!r}; rename it first.")
            model.objects.filter(pk=current.pk).update(name=name)
        section = "rules" if record.kind == RULE else "templates"
        try:
            rules_import({"format": FORMAT_VERSION, section: {name: entry}})
        except RulesFileError as exc:
            raise RestoreError(f"Version #{record.version} cannot be restored: " + "; ".join(exc.errors)) from exc
        return change_record(kind=record.kind, object_id=record.object_id, action=f"restored version #{record.version}",
                             user=user, before=before)  # fmt: skip
