"""Write keys, contacts and the events they send.

An Event row is written by the ingest API inside the request's transaction and is the only
record that the event was acknowledged; `processed_at` stays empty until the rules have been
matched, so an event whose processing task was lost is found again by the dispatcher.
"""

from __future__ import annotations

import secrets

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

# One definition, in triggermail: the web worker hashes keys too, to refuse one before Django runs.
from triggermail.refusals import write_key_hash

__all__ = ["write_key_hash"]  # re-exported: events imports it from here

WRITE_KEY_PREFIX = "tm_"


class WriteKey(models.Model):
    class Kind(models.TextChoices):
        # A backend's key, kept secret: its messages say who a contact is (email, traits).
        SERVER = "server", "Server (secret; may set contact traits and email)"
        # A key shipped to every visitor's browser (analytics.js): its messages are stored and
        # matched, but never change a contact (see events/key_kinds.py).
        BROWSER = "browser", "Browser (public; cannot change contacts)"

    name = models.CharField(max_length=100, help_text="Which app or environment uses this key.")
    kind = models.CharField(
        max_length=10, choices=Kind.choices, default=Kind.SERVER, help_text="Chosen when the key is created."
    )
    # Blank: INGEST_RATE_LIMIT / INGEST_RATE_BURST from the settings.
    rate_limit = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.01)],
        help_text="Requests per second this key may make on average. Blank: the INGEST_RATE_LIMIT setting.",
    )
    rate_burst = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Requests this key may make at once above its rate. Blank: the INGEST_RATE_BURST setting.",
    )
    prefix = models.CharField(max_length=12, editable=False, help_text="First characters, to recognise the key.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def issue(cls, *, name: str, kind: str = Kind.SERVER, **limits: float | int | None) -> tuple[WriteKey, str]:
        """Create a key and return it with its secret, which is stored only as a hash.
        `limits`: rate_limit and rate_burst, when this key's differ from the settings'."""
        raw = WRITE_KEY_PREFIX + secrets.token_urlsafe(32)
        key = cls.objects.create(name=name, kind=kind, prefix=raw[:10], key_hash=write_key_hash(raw), **limits)
        return key, raw


class RateBucket(models.Model):
    """A write key's rate limit state when Redis is not configured (events/ratelimit.py): GCRA's
    theoretical arrival time, in seconds since the epoch. On PostgreSQL the table is UNLOGGED
    (migration 0006): a crash empties it, which only forgets who was being throttled, and its
    commits need no WAL flush, so the one UPDATE per request costs no disk wait."""

    key = models.OneToOneField(WriteKey, primary_key=True, on_delete=models.CASCADE, related_name="+")
    tat = models.FloatField()

    def __str__(self) -> str:
        return f"rate bucket of write key {self.key_id}"


class Contact(models.Model):
    # Segment's userId, or its anonymousId when a message has no userId.
    user_id = models.CharField(max_length=255, unique=True)
    email = models.EmailField(max_length=254, blank=True)
    timezone = models.CharField(max_length=64, blank=True, help_text="IANA zone, e.g. Europe/Paris.")
    locale = models.CharField(max_length=35, blank=True)
    traits = models.JSONField(default=dict, blank=True)
    # Marketing consent; transactional email (receipts) is not affected by either.
    unsubscribed_at = models.DateTimeField(null=True, blank=True, help_text="Left all marketing email.")
    unsubscribed_topics = models.JSONField(default=list, blank=True, help_text="Marketing topics the contact left.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user_id"]

    def __str__(self) -> str:
        return self.user_id


class Event(models.Model):
    class Type(models.TextChoices):
        TRACK = "track"
        IDENTIFY = "identify"
        # Stored so nothing an SDK sends is lost; rules listen to track events only.
        PAGE = "page"
        SCREEN = "screen"
        GROUP = "group"
        ALIAS = "alias"

    # Segment's messageId: the same message posted twice (SDK retries) by one source is stored
    # once; another source's message with the same id is another message (event_source_message).
    message_id = models.CharField(max_length=255)
    type = models.CharField(max_length=10, choices=Type.choices)
    name = models.CharField(max_length=255, blank=True, db_index=True, help_text="Event name of a track call.")
    # Looked up through event_user_name_time, whose first column it is: an index of its own would
    # only cost every insert.
    user_id = models.CharField(max_length=255)
    anonymous_id = models.CharField(max_length=255, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    traits = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    # When the user acted (the message's timestamp, never later than received_at).
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    # Set, with processed_at, when matching this event raised: the event is out of the pipeline (the
    # rest of its batch went on) and keeps its data, so a person can process it again after a fix.
    # db_default: the ingest's INSERT names its columns and leaves this one to the database.
    processing_error = models.TextField(blank=True, default="", db_default="")
    source = models.ForeignKey(WriteKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["id"], condition=Q(processed_at__isnull=True), name="event_unprocessed"),
            models.Index(fields=["user_id", "name", "occurred_at"], name="event_user_name_time"),
            models.Index(fields=["received_at"], name="event_received"),
        ]
        constraints = [models.UniqueConstraint(fields=["source", "message_id"], name="event_source_message")]

    def __str__(self) -> str:
        return f"{self.name or self.type} from {self.user_id}"


class MessageKey(models.Model):
    """A (source, messageId) stored, for MESSAGE_DEDUPE_DAYS: on PostgreSQL, where events are
    partitioned by day (triggermail.partitions), the events table cannot hold a unique index on
    (source, message_id) across its partitions, so this table holds it. A BEFORE INSERT trigger on
    events (campaigns migration 0018) inserts here and skips the event when the key is taken, so the
    ingest's INSERT … RETURNING returns only the new events. Unused on SQLite, whose events table
    keeps event_source_message."""

    pk = models.CompositePrimaryKey("source_id", "message_id")
    source_id = models.BigIntegerField()
    message_id = models.CharField(max_length=255)
    # Pruning deletes by age (campaigns.sending.retention).
    received_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.message_id} from source {self.source_id}"
