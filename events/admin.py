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
from triggermail.admin_filters import null_filter
from triggermail.times import time_text

WriteKeyStatusFilter = null_filter(
    title="status", parameter="status", field="revoked_at", empty=("active", "Active"), filled=("revoked", "Revoked")
)


@admin.register(WriteKey)
class WriteKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "created_at", "status"]
    list_filter = [WriteKeyStatusFilter]
    search_fields = ["name", "prefix"]
    actions = ["keys_revoke"]

    def get_fields(self, request: HttpRequest, obj: WriteKey | None = None) -> tuple[str, ...]:
        # A new key takes only a name; the secret is generated, and its hash is never shown.
        return ("name",) if obj is None else ("name", "prefix", "created_at", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: WriteKey | None = None) -> tuple[str, ...]:
        return () if obj is None else ("prefix", "created_at", "revoked_at")

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
        issued, raw = WriteKey.issue(name=obj.name)
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
