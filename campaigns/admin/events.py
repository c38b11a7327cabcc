"""Events and contacts in the admin, with their decision traces.

The ingest API (events/) writes these rows; here they are read, with what matching decided for each
event and what was sent to each contact: the answer to "why did or didn't this user get that
email?". An event that failed processing can be processed again after its rule or template is fixed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from campaigns.admin.display import ReadOnlyAdmin, admin_link, pretty_json
from campaigns.admin.trace import decision_trace, send_table
from campaigns.consent.suppression import email_normalize, soft_bounce_count
from campaigns.matching.poison import events_requeue
from campaigns.models import Decision, Send, Suppression
from events.models import Contact, Event
from triggermail.times import time_text


class ProcessingFilter(admin.SimpleListFilter):
    """Processing: failed (matching raised; see the error), pending (not matched yet) or done."""

    title = "processing"
    parameter_name = "processing"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("failed", "Failed"), ("pending", "Pending"), ("done", "Done")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "failed":
            return queryset.filter(processed_at__isnull=False).exclude(processing_error="")
        if self.value() == "pending":
            return queryset.filter(processed_at__isnull=True)
        if self.value() == "done":
            return queryset.filter(processed_at__isnull=False, processing_error="")
        return queryset


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["id", "name_or_type", "user_id", "occurred_at", "received_at", "processed", "error_short"]
    list_filter = ["type", ProcessingFilter]
    search_fields = ["user_id", "name", "message_id"]
    show_full_result_count = False
    readonly_fields = ["contact_link", "properties_pretty", "traits_pretty", "context_pretty", "trace"]
    fieldsets = [
        (None, {"fields": ["name", "type", "contact_link", "anonymous_id", "message_id", "source"]}),
        ("Time", {"fields": ["occurred_at", "received_at", "processed_at", "processing_error"]}),
        ("Data", {"fields": ["properties_pretty", "traits_pretty", "context_pretty"]}),
        ("Decision trace", {"fields": ["trace"], "description": "What each rule listening to this event decided."}),
    ]
    actions = ["events_process_again"]

    def has_process_permission(self, request: HttpRequest) -> bool:
        # Events are never edited here; processing one again is the one change an operator makes.
        return request.user.has_perm("events.change_event")

    @admin.action(description="Process again (after fixing the rule or template)", permissions=["process"])
    def events_process_again(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        selected = list(queryset.values_list("pk", flat=True))
        count = events_requeue(selected)
        skipped = len(selected) - count
        note = f" {skipped} selected event(s) had not failed and were left as they are." if skipped else ""
        self.message_user(
            request,
            f"Re-queued {count} failed event{'' if count == 1 else 's'}: the workers match "
            f"{'it' if count == 1 else 'them'} again in a moment.{note}",
            messages.SUCCESS if count else messages.WARNING,
        )

    @admin.display(description="Error", ordering="processing_error")
    def error_short(self, event: Event) -> str:
        error = event.processing_error
        return error if len(error) <= 80 else error[:79] + "…"

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
        elif event.processing_error:
            empty = f"Matching this event failed: {event.processing_error}"
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
            return f"Unsubscribed from all marketing email on {time_text(contact.unsubscribed_at)}"
        if contact.unsubscribed_topics:
            return "Subscribed, except the topics " + ", ".join(contact.unsubscribed_topics)
        return "Subscribed"

    @admin.display(description="Suppressions")
    def suppressions(self, contact: Contact) -> SafeString:
        active = Suppression.objects.filter(email=email_normalize(contact.email), lifted_at__isnull=True)
        items = ((admin_link(s, s.get_reason_display()), time_text(s.created_at), s.detail or "—") for s in active)
        return format_html(
            '<ul class="tm-compact-list">{}</ul><p class="tm-after-list">{}. {}</p>',
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
