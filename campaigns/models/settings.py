"""The campaign settings marketers change in Admin, and the stamp that tells the worker rules changed."""

from __future__ import annotations

from datetime import timedelta

from django.db import models


class CampaignSettings(models.Model):
    """Settings marketers change in Admin: one row."""

    marketing_cap_count = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="At most this many marketing emails per contact; empty: no cap."
    )
    marketing_cap_period = models.DurationField(default=timedelta(hours=24))
    window_start = models.TimeField(null=True, blank=True, help_text="Default send window for rules without one.")
    window_end = models.TimeField(null=True, blank=True)
    window_days = models.JSONField(default=list, blank=True, help_text="Weekdays 0 (Monday) to 6; empty: every day.")
    fallback_timezone = models.CharField(max_length=64, default="UTC", help_text="For contacts without a time zone.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "campaign settings"
        verbose_name_plural = "campaign settings"

    def __str__(self) -> str:
        return "Campaign settings"

    @classmethod
    def current(cls) -> CampaignSettings:
        """The settings in force: the row, or the defaults while nobody has saved it. Read on every
        batch and claim, so it never writes; the Admin creates the row when someone edits it."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)


class RulesStamp(models.Model):
    """One row whose stamp changes whenever a rule, condition, template or the campaign settings do.

    Database triggers (migration 0008) write a new random stamp on every insert, update and delete
    of those tables, whoever makes it: the Admin, an import, a bulk update, SQL by hand. The event
    processor reads this one value per batch and re-reads the rules only when it changed
    (campaigns.matching.rules_cache). Random rather than a counter: a rolled-back change must not leave a
    number that a later, different change could reach again.
    """

    stamp = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"rules stamp {self.stamp}"
