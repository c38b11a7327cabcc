"""The forms of the template preview and the simulator: what a marketer typed, checked and parsed.

Both offer the recent events to start from; "Use this event" copies one into the editable fields,
so the page works with plain form submits (a line of inline script only saves that click).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from campaigns.authoring.form_fields import locale_clean
from campaigns.authoring.preview import Sample, SampleError, event_label, events_recent, sample_from_event, sample_parse
from campaigns.authoring.simulator import SimulatedEvent
from events.models import Event


class RecentEventField(forms.ModelChoiceField):
    """One of the latest track events; an older one (a newer event arrived meanwhile) is still valid."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(queryset=Event.objects.filter(type=Event.Type.TRACK), required=False, **kwargs)

    def offer_recent(self) -> None:
        # Called per form instance: the field itself is built once, when the form class is defined.
        self.choices = [("", "— none: write it below —"), *((e.pk, event_label(e)) for e in events_recent())]


class RecentEventForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["event"]
        assert isinstance(field, RecentEventField)
        field.offer_recent()


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError as exc:
        raise ValidationError(f"{what} is not valid JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise ValidationError(f'{what} must be a JSON object, e.g. {{"plan": "pro"}}.')
    return value


class PreviewForm(RecentEventForm):
    event = RecentEventField(label="Recent event", help_text="Its properties, with its user's stored contact.")
    sample = forms.CharField(
        label="Sample (JSON)",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 12, "cols": 80, "class": "vLargeTextField", "spellcheck": "false"}),
        help_text='{"event": {…properties}, "contact": {…traits, "email": …}}',
    )
    subject = forms.CharField(required=False, widget=forms.TextInput(attrs={"size": 80}))
    text_body = forms.CharField(label="Text body", required=False, widget=forms.Textarea(attrs={"rows": 8, "cols": 80}))
    html_body = forms.CharField(label="HTML body", required=False, widget=forms.Textarea(attrs={"rows": 8, "cols": 80}))
    sendgrid_template_id = forms.CharField(label="SendGrid template id", required=False)
    locale = forms.CharField(
        label="Contact's locale",
        required=False,
        max_length=35,
        widget=forms.TextInput(attrs={"size": 12, "placeholder": "fr, pt-BR", "list": "preview-locales"}),
        help_text="The email as a contact with this locale gets it: pt-BR, else pt, else the default. "
        "Empty: the default.",
    )
    to = forms.EmailField(
        label="Send a test to",
        required=False,
        widget=forms.EmailInput(attrs={"placeholder": "you@example.com", "size": 40}),
    )

    def clean_locale(self) -> str:
        return locale_clean(self.cleaned_data.get("locale") or "")

    def clean_sample(self) -> Sample:
        try:
            return sample_parse(self.cleaned_data.get("sample") or "")
        except SampleError as exc:
            raise ValidationError(str(exc)) from None

    def edits(self) -> dict[str, str]:
        return {name: self.cleaned_data[name] for name in ("subject", "text_body", "html_body", "sendgrid_template_id")}


def preview_data(posted: Any, *, load: bool) -> Any:
    """The posted data, with the sample replaced by the chosen event's when asked to use it."""
    data = posted.copy()
    event = event_chosen(posted.get("event")) if load else None
    if event is not None:
        data["sample"] = sample_from_event(event).as_json()
    return data


def event_chosen(value: object) -> Event | None:
    """The track event a form or link names by id; None for nothing or nonsense."""
    text = str(value or "").strip()
    return Event.objects.filter(pk=int(text), type=Event.Type.TRACK).first() if text.isdigit() else None


class SimulatorForm(RecentEventForm):
    event = RecentEventField(label="Recent event", help_text="“Use this event” copies it into the fields below.")
    name = forms.CharField(label="Event name", max_length=255, widget=forms.TextInput(attrs={"size": 40}))
    user_id = forms.CharField(label="User id", max_length=255, widget=forms.TextInput(attrs={"size": 40}))
    properties = forms.CharField(
        label="Properties (JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80, "spellcheck": "false"}),
        help_text='e.g. {"value": 80, "order_id": "o-1"}',
    )
    timestamp = forms.CharField(
        label="Timestamp",
        required=False,
        help_text="When the user acted, ISO 8601 (2026-03-02T10:00:00+00:00). Empty or later than now: now.",
        widget=forms.TextInput(attrs={"size": 40}),
    )
    traits = forms.CharField(
        label="Contact traits override (JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80, "spellcheck": "false"}),
        help_text='Replaces these traits of the stored contact for this simulation, e.g. {"plan": "pro", '
        '"email": "ann@example.com", "timezone": "Europe/Paris", "locale": "fr"}.',
    )

    def clean_name(self) -> str:
        return str(self.cleaned_data["name"]).strip()

    def clean_user_id(self) -> str:
        return str(self.cleaned_data["user_id"]).strip()

    def clean_properties(self) -> dict[str, Any]:
        return _json_object(self.cleaned_data.get("properties") or "", "Properties")

    def clean_traits(self) -> dict[str, Any]:
        return _json_object(self.cleaned_data.get("traits") or "", "Traits")

    def clean_timestamp(self) -> datetime | None:
        text = str(self.cleaned_data.get("timestamp") or "").strip()
        if not text:
            return None
        try:
            moment = parse_datetime(text)
        except ValueError:
            moment = None
        if moment is None:
            raise ValidationError(f"{text!r} is not a time; write e.g. 2026-03-02T10:00:00+00:00.")
        return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)

    def simulated_event(self) -> SimulatedEvent:
        data = self.cleaned_data
        chosen = data.get("event")
        # The chosen event counts as the original only while the fields still describe it.
        copied_from = None
        if chosen is not None and (chosen.name, chosen.user_id) == (data["name"], data["user_id"]):
            copied_from = chosen.pk
        return SimulatedEvent(
            name=self.cleaned_data["name"],
            user_id=self.cleaned_data["user_id"],
            properties=self.cleaned_data["properties"],
            occurred_at=self.cleaned_data["timestamp"],
            copied_from=copied_from,
        )


def simulator_fields(event: Event) -> dict[str, str]:
    """The simulator's fields filled in from a stored event."""
    return {
        "event": str(event.pk),
        "name": event.name,
        "user_id": event.user_id,
        "properties": json.dumps(event.properties or {}, indent=2, sort_keys=True),
        "timestamp": event.occurred_at.isoformat(),
        "traits": "",
    }
