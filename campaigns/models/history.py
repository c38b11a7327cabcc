"""The change history of rules and templates."""

from __future__ import annotations

from django.db import models


class ChangeRecord(models.Model):
    """One saved change to a rule or a template: who, when, and the whole object before and after.

    Snapshots use the campaign file's format (`campaigns.authoring.transfer`), so a diff reads like a change to
    that file and restoring a version is importing its snapshot.
    """

    class Kind(models.TextChoices):
        RULE = "rule"
        TEMPLATE = "template"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    object_id = models.PositiveBigIntegerField()
    # The object's own version number, 1 for its first record: a rule's history reads #1, #2, #3
    # however many other objects changed in between (campaigns.authoring.history numbers them).
    version = models.PositiveIntegerField()
    object_name = models.CharField(max_length=100)
    # Long enough for "restored version #1234567" and the like.
    action = models.CharField(max_length=40, help_text="created, changed, restored version #N, deleted, imported…")
    user = models.CharField(max_length=150, blank=True, help_text="Who made the change; empty for a command.")
    created_at = models.DateTimeField(auto_now_add=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["kind", "object_id", "-id"], name="change_record_object")]
        constraints = [
            models.UniqueConstraint(fields=["kind", "object_id", "version"], name="change_record_version"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_name} {self.action} by {self.user or 'a command'}"
