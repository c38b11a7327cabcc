"""Write keys in the admin: issued once (the secret is shown a single time), revoked, never deleted.

Events and contacts are shown by campaigns.admin.events, with the decision traces that answer
"why did or didn't this user get that email?": that is campaigns' business, not the ingest's.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from events.models import WriteKey
from events.ratelimit import write_key_limit
from triggermail.admin_filters import null_filter
from triggermail.times import time_text

WriteKeyStatusFilter = null_filter(
    title="status", parameter="status", field="revoked_at", empty=("active", "Active"), filled=("revoked", "Revoked")
)


@admin.register(WriteKey)
class WriteKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "prefix", "rate", "created_at", "status"]
    list_filter = ["kind", WriteKeyStatusFilter]
    search_fields = ["name", "prefix"]
    actions = ["keys_revoke"]

    def get_fields(self, request: HttpRequest, obj: WriteKey | None = None) -> tuple[str, ...]:
        # The secret is generated, and its hash is never shown.
        chosen = ("name", "kind", "rate_limit", "rate_burst")
        return chosen if obj is None else (*chosen, "prefix", "created_at", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: WriteKey | None = None) -> tuple[str, ...]:
        # The kind is chosen once: a key already shipped in a web page must not become a server
        # key, and a server key made public should be revoked, not relabelled.
        return () if obj is None else ("kind", "prefix", "created_at", "revoked_at")

    @admin.display(description="Rate limit")
    def rate(self, key: WriteKey) -> str:
        limit = write_key_limit(key)
        if limit is None:
            return "off (INGEST_RATE_LIMIT_ENABLED)"
        default = key.rate_limit is None and key.rate_burst is None
        return f"{limit.rate:g}/s, burst {limit.burst}" + (" (default)" if default else "")

    def has_delete_permission(self, request: HttpRequest, obj: WriteKey | None = None) -> bool:
        # Events keep a link to the key they came with; revoking keeps that history, deleting would not.
        return False

    @admin.display(description="Status", ordering="revoked_at")
    def status(self, key: WriteKey) -> str:
        return "active" if key.revoked_at is None else f"revoked {time_text(key.revoked_at)}"

    def save_model(self, request: HttpRequest, obj: WriteKey, form: ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        # WriteKey.issue is the one place a secret is made; the admin's unsaved object then takes
        # on the issued row so the rest of the add view (log entry, redirect) sees a saved key.
        issued, raw = WriteKey.issue(name=obj.name, kind=obj.kind, rate_limit=obj.rate_limit, rate_burst=obj.rate_burst)
        obj.pk = issued.pk
        obj.refresh_from_db()
        obj._state.adding = False
        self.message_user(
            request,
            format_html(
                "The new write key for “{}” is <code class='tm-select-all'>{}</code>. Copy it now: "
                "it is stored only as a hash and cannot be shown again.",
                obj.name,
                raw,
            ),
            messages.SUCCESS,
        )

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def keys_revoke(self, request: HttpRequest, queryset: QuerySet[WriteKey]) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(
            request,
            f"Revoked {count} write key{'' if count == 1 else 's'}; requests using them are now refused (401).",
            messages.SUCCESS,
        )
