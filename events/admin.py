"""Write keys, contacts and events in the admin.

Contacts and events are written by the ingest API and read here; their pages carry the decision
trace (campaigns.admin.trace) that answers "why did or didn't this user get that email?".
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from campaigns.admin.display import ReadOnlyAdmin, admin_link, null_filter, pretty_json
from campaigns.admin.trace import decision_trace, send_table
from campaigns.consent.suppression import email_normalize, soft_bounce_count
from campaigns.models import Decision, Send, Suppression
from events.models import Contact, Event, WriteKey

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
        return "active" if key.revoked_at is None else f"revoked {key.revoked_at:%Y-%m-%d %H:%M}"

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
                "The new write key for “{}” is <code style='user-select:all'>{}</code>. Copy it now: "
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


ProcessedFilter = null_filter(
    title="processed", parameter="processed", field="processed_at", empty=("no", "Waiting"), filled=("yes", "Processed")
)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["id", "name_or_type", "user_id", "occurred_at", "received_at", "processed"]
    list_filter = ["type", ProcessedFilter]
    search_fields = ["user_id", "name", "message_id"]
    show_full_result_count = False
    readonly_fields = ["contact_link", "properties_pretty", "traits_pretty", "context_pretty", "trace"]
    fieldsets = [
        (None, {"fields": ["name", "type", "contact_link", "anonymous_id", "message_id", "source"]}),
        ("Time", {"fields": ["occurred_at", "received_at", "processed_at"]}),
        ("Data", {"fields": ["properties_pretty", "traits_pretty", "context_pretty"]}),
        ("Decision trace", {"fields": ["trace"], "description": "What each rule listening to this event decided."}),
    ]

    @admin.display(description="Event", ordering="name")
    def name_or_type(self, event: Event) -> str:
        return event.name or f"({event.type})"

    @admin.display(description="Processed", boolean=True, ordering="processed_at")
    def processed(self, event: Event) -> bool:
        return event.processed_at is not None

    @admin.display(description="User")
    def contact_link(self, event: Event) -> SafeString | str:
        contact = Contact.objects.filter(user_id=event.user_id).first()
        return admin_link(contact) if contact else event.user_id

    @admin.display(description="Properties")
    def properties_pretty(self, event: Event) -> SafeString:
        return pretty_json(event.properties)

    @admin.display(description="Traits")
    def traits_pretty(self, event: Event) -> SafeString:
        return pretty_json(event.traits)

    @admin.display(description="Context")
    def context_pretty(self, event: Event) -> SafeString:
        return pretty_json(event.context)

    @admin.display(description="Decisions")
    def trace(self, event: Event) -> SafeString:
        if event.processed_at is None:
            empty = "Not processed yet: the rules have not looked at this event."
        elif event.type != Event.Type.TRACK:
            empty = f"Rules listen to track events only; this is a {event.type} call."
        else:
            empty = f"No rule listens to {event.name}."
        return decision_trace(
            Decision.objects.filter(event=event),
            show_event=False,
            empty_text=empty,
            all_query=urlencode({"event__id__exact": event.pk}),
        )


@admin.register(Contact)
class ContactAdmin(ReadOnlyAdmin):
    list_display = ["user_id", "email", "timezone", "created_at", "updated_at"]
    search_fields = ["user_id", "email"]
    readonly_fields = ["traits_pretty", "events_link", "subscription", "suppressions", "decisions", "sends"]
    fieldsets = [
        (None, {"fields": ["user_id", "email", "timezone", "locale", "created_at", "updated_at", "events_link"]}),
        ("Traits", {"fields": ["traits_pretty"]}),
        ("Consent", {"fields": ["subscription", "suppressions"]}),
        ("Why (not)?", {"fields": ["decisions"], "description": "What every rule decided for this contact."}),
        ("Emails", {"fields": ["sends"]}),
    ]

    @admin.display(description="Traits")
    def traits_pretty(self, contact: Contact) -> SafeString:
        return pretty_json(contact.traits)

    @admin.display(description="Marketing email")
    def subscription(self, contact: Contact) -> str:
        if contact.unsubscribed_at is not None:
            return f"Unsubscribed from all marketing email on {contact.unsubscribed_at:%Y-%m-%d %H:%M} (UTC)"
        if contact.unsubscribed_topics:
            return "Subscribed, except the topics " + ", ".join(contact.unsubscribed_topics)
        return "Subscribed"

    @admin.display(description="Suppressions")
    def suppressions(self, contact: Contact) -> SafeString:
        active = Suppression.objects.filter(email=email_normalize(contact.email), lifted_at__isnull=True)
        items = (
            (admin_link(s, s.get_reason_display()), f"{s.created_at:%Y-%m-%d %H:%M}", s.detail or "—") for s in active
        )
        return format_html(
            "<ul style='margin:0;padding-left:1.2em'>{}</ul><p style='margin:.3em 0 0'>{}. {}</p>",
            format_html_join("", "<li>{} since {}: {}</li>", items),
            "Every email to this address is blocked" if active else "No active suppression",
            f"Soft bounces (counted, not suppressed): {soft_bounce_count(contact.email)}.",
        )

    @admin.display(description="Events")
    def events_link(self, contact: Contact) -> SafeString:
        url = reverse("admin:events_event_changelist") + "?" + urlencode({"user_id": contact.user_id})
        return format_html('<a href="{}">Every event from {}</a>', url, contact.user_id)

    @admin.display(description="Decisions")
    def decisions(self, contact: Contact) -> SafeString:
        return decision_trace(
            Decision.objects.filter(contact=contact),
            show_event=True,
            empty_text="No rule has decided anything for this contact yet.",
            all_query=urlencode({"contact__id__exact": contact.pk}),
        )

    @admin.display(description="Sends")
    def sends(self, contact: Contact) -> SafeString:
        return send_table(
            Send.objects.filter(contact=contact),
            empty_text="No email has been scheduled for this contact.",
            all_query=urlencode({"contact__id__exact": contact.pk}),
        )
