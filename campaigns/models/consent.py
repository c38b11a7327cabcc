"""Suppressed addresses: who must not be emailed."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from campaigns.models.sends import ProviderEvent


class Suppression(models.Model):
    """An address that must not be emailed (marketing or transactional) until a person lifts it."""

    class Reason(models.TextChoices):
        BOUNCE = "bounce", "hard bounce"
        DROPPED = "dropped", "dropped by the provider"
        COMPLAINT = "complaint", "spam complaint"
        PROVIDER_UNSUBSCRIBE = "unsubscribe", "unsubscribed at the provider"
        MANUAL = "manual"

    email = models.CharField(max_length=254, db_index=True)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    detail = models.TextField(blank=True)
    # No foreign key in the database: provider events are partitioned on PostgreSQL; dropping a day
    # sets these NULL first (triggermail.partitions).
    provider_event = models.ForeignKey(
        ProviderEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["email"], condition=Q(lifted_at__isnull=True), name="suppression_one_active_per_address"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.reason})"
