"""Admin forms: rules and templates edited the way marketers think about them.

Delays are typed as people say them ("30 minutes"), exit events as a comma-separated list and
condition values as JSON-ish text (50 is a number, gold a string, true a boolean). Everything is
validated here, with the error on the field (or the condition row) that caused it, so nothing
a marketer saves can fail later inside the worker.
"""

from __future__ import annotations

import email.utils
import json
from datetime import timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.forms.models import BaseInlineFormSet
from django.template import TemplateDoesNotExist

from campaigns.authoring.durations import NO_COOLDOWN, NO_DELAY
from campaigns.authoring.engagement_forms import RuleNameInput, engagement_clean, engagement_reference_errors
from campaigns.authoring.form_fields import (
    CommaSeparatedListField,
    ConditionValueField,
    HumanDurationField,
    is_number,
)
from campaigns.authoring.rendering import RenderError, template_render
from campaigns.authoring.timing_forms import WINDOW_WIDGETS, WeekdaysField, timing_clean
from campaigns.models import CappedAction, Condition, DedupePolicy, Rule, Template

# --- Rules ----------------------------------------------------------------------------------

_VALUELESS = (Condition.Operator.EXISTS, Condition.Operator.NOT_EXISTS)
_NUMERIC = (
    Condition.Operator.GREATER,
    Condition.Operator.GREATER_OR_EQUAL,
    Condition.Operator.LESS,
    Condition.Operator.LESS_OR_EQUAL,
)


class ConditionForm(forms.ModelForm):
    value = ConditionValueField(
        required=False,
        help_text='50 is a number, gold or "gold" text, true a yes/no. Empty for exists.',
        widget=forms.TextInput(attrs={"placeholder": '50, gold, "50", true'}),
    )

    class Meta:
        model = Condition
        fields = ["source", "key", "operator", "value"]
        widgets = {"key": RuleNameInput()}

    def clean_key(self) -> str:
        key = str(self.cleaned_data["key"]).strip()
        if self.cleaned_data.get("source") == Condition.Source.ENGAGEMENT:
            return key  # a rule's name, checked against the rules by the form set
        if not key or any(not part.strip() for part in key.split(".")):
            raise ValidationError(f"{key!r} is not a dotted path such as cart.value.", code="invalid")
        return key

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if engagement_clean(self, cleaned):
            return cleaned
        operator, value = cleaned.get("operator"), cleaned.get("value")
        if operator in _VALUELESS:
            # "exists" compares with nothing; a leftover value would only mislead the next reader.
            cleaned["value"] = None
        elif operator and value is None and "value" not in self.errors:
            self.add_error("value", f"“{Condition.Operator(operator).label}” needs a value to compare with.")
        elif operator in _NUMERIC and value is not None and not is_number(value):
            label = Condition.Operator(operator).label
            self.add_error("value", f"“{label}” compares numbers, and {json.dumps(value)} is not a number.")
        return cleaned


class ConditionFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        problems = []
        for number, form in enumerate(self.forms, start=1):
            if not form.errors or (self.can_delete and form.cleaned_data.get("DELETE")):
                continue
            key = str(form.data.get(form.add_prefix("key"), "")).strip() or "no key"
            messages = " ".join(str(message) for errors in form.errors.values() for message in errors)
            problems.append(f"Condition {number} ({key}): {messages}")
        live = [f for f in self.forms if not (self.can_delete and f.cleaned_data.get("DELETE"))]
        rows = [(f.cleaned_data.get("source", ""), f.cleaned_data.get("key", "")) for f in live]
        names = Rule.objects.exclude(pk=self.instance.pk).values_list("name", flat=True)
        problems += engagement_reference_errors(self.instance.name, rows, names)
        if problems:
            raise ValidationError(problems)
        # Conditions are evaluated and described in the order they are listed.
        for position, form in enumerate(self.forms):
            form.instance.position = position


class RuleForm(forms.ModelForm):
    delay = HumanDurationField(
        required=False,
        zero_text=NO_DELAY,
        help_text="How long after the event to send, e.g. 30 minutes, 2 days, 1h 30m. "
        f"Empty or “{NO_DELAY}”: no delay.",
    )
    cooldown = HumanDurationField(
        required=False,
        zero_text=NO_COOLDOWN,
        help_text="No second email from this rule to the same contact within this time, e.g. 1 day. "
        f"Empty or “{NO_COOLDOWN}”: no cooldown.",
    )
    exit_events = CommaSeparatedListField(
        required=False,
        help_text="Events that cancel a pending send, separated by commas, e.g. order_completed, account_deleted.",
        widget=forms.TextInput(attrs={"size": 60}),
    )
    cap_period = HumanDurationField(required=False, label="Cap period", help_text="e.g. 1 day, 1 week. Empty: 1 day.")
    capped_action = forms.ChoiceField(choices=CappedAction.choices, required=False, label="Over the cap")
    window_days = WeekdaysField(label="Window weekdays", help_text="None ticked: every day.")
    goal_window = HumanDurationField(
        required=False, help_text="How long after the email the goal event counts, e.g. 3 days. Empty: 3 days."
    )

    class Meta:
        model = Rule
        fields = [
            "name",
            "active",
            "trigger_event",
            "template",
            "delay",
            "cooldown",
            "exit_events",
            "dedupe_policy",
            "dedupe_property",
            "cap_count",
            "cap_period",
            "capped_action",
            "window_start",
            "window_end",
            "window_days",
            "goal_event",
            "goal_window",
        ]
        labels = {"cap_count": "Cap", "window_start": "Send from", "window_end": "Send until"}
        widgets = WINDOW_WIDGETS
        help_texts = {
            "cap_count": "At most this many emails from this rule per contact within the cap period. Empty: no cap.",
            "window_start": "The contact's local time, e.g. 08:00. Empty: the default window of the settings.",
            "window_end": "The contact's local time, e.g. 20:00; before the start (20:00 to 02:00) crosses midnight.",
            "goal_event": "An event that counts as this email's conversion, e.g. order_completed.",
        }

    def clean_trigger_event(self) -> str:
        return str(self.cleaned_data["trigger_event"]).strip()

    def clean_dedupe_property(self) -> str:
        return str(self.cleaned_data.get("dedupe_property") or "").strip()

    def clean_goal_event(self) -> str:
        return str(self.cleaned_data.get("goal_event") or "").strip()

    # Left empty, the timing fields take the model's defaults rather than "no time at all".
    def clean_cap_period(self) -> timedelta:
        return self.cleaned_data.get("cap_period") or Rule._meta.get_field("cap_period").get_default()

    def clean_capped_action(self) -> str:
        return self.cleaned_data.get("capped_action") or CappedAction.SKIP

    def clean_goal_window(self) -> timedelta:
        return self.cleaned_data.get("goal_window") or Rule._meta.get_field("goal_window").get_default()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("dedupe_policy") == DedupePolicy.PER_PROPERTY and not cleaned.get("dedupe_property"):
            self.add_error(
                "dedupe_property", "Name the event property (e.g. order_id) when sending once per value of a property."
            )
        timing_clean(self, cleaned)
        return cleaned


# --- Templates ------------------------------------------------------------------------------

# Which model field each part reported by campaigns.authoring.rendering comes from.
_RENDERED_FIELDS = ("subject", "text_body", "html_body")


def template_source_errors(*, subject: str, text_body: str, html_body: str) -> dict[str, str]:
    """Field name → the error that field's Django template syntax has, with its line."""
    errors: dict[str, str] = {}
    sources = {"subject": subject, "text_body": text_body, "html_body": html_body}
    for field in _RENDERED_FIELDS:
        # Each part is compiled alone, so one broken part does not hide the others' errors.
        candidate = Template(**{field: sources[field]})
        try:
            template_render(candidate, {})
        except RenderError as exc:
            message = str(exc.__cause__ or exc)
            errors[field] = f"Line {exc.line}: {message}" if exc.line else message
        except TemplateDoesNotExist as exc:
            errors[field] = f"Email templates cannot include or extend other templates ({exc})."
    return errors


class TemplateForm(forms.ModelForm):
    class Meta:
        model = Template
        fields = [
            "name",
            "category",
            "topic",
            "from_email",
            "subject",
            "text_body",
            "html_body",
            "sendgrid_template_id",
        ]
        labels = {"html_body": "HTML body", "sendgrid_template_id": "SendGrid template id"}
        widgets = {
            "subject": forms.TextInput(attrs={"size": 80}),
            "text_body": forms.Textarea(attrs={"rows": 12, "cols": 100, "class": "vLargeTextField"}),
            "html_body": forms.Textarea(attrs={"rows": 16, "cols": 100, "class": "vLargeTextField"}),
        }

    def clean_from_email(self) -> str:
        value = str(self.cleaned_data.get("from_email") or "").strip()
        if value:
            _, address = email.utils.parseaddr(value)
            try:
                validate_email(address)
            except ValidationError:
                raise ValidationError(
                    f"{value!r} is not an address; write e.g. hello@example.com or Shop <hello@example.com>."
                ) from None
        return value

    def clean_sendgrid_template_id(self) -> str:
        return sendgrid_id_clean(self.cleaned_data.get("sendgrid_template_id"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        template_content_clean(self, cleaned)
        return cleaned


def sendgrid_id_clean(value: object) -> str:
    text = str(value or "").strip()
    # Only dynamic templates take our data as handlebars variables; legacy ids would send blanks.
    if text and not text.startswith("d-"):
        raise ValidationError("A SendGrid dynamic template id starts with d-.")
    return text


def template_content_clean(form: forms.BaseForm, cleaned: dict[str, Any], *, whom: str = "") -> None:
    """Subject and bodies that compile, and something to send: a subject and a body, or a SendGrid id.
    Shared by templates and their translations (`whom` = "this language ")."""
    sources = {field: str(cleaned.get(field) or "") for field in _RENDERED_FIELDS}
    for field, message in template_source_errors(**sources).items():
        if field not in form.errors:
            form.add_error(field, message)
    if not cleaned.get("sendgrid_template_id") and "sendgrid_template_id" not in form.errors:
        if not sources["subject"].strip() and "subject" not in form.errors:
            form.add_error("subject", f"Give {whom}a subject (or a SendGrid template id instead).")
        if not (sources["text_body"].strip() or sources["html_body"].strip()):
            form.add_error("text_body", f"Give {whom}a text or an HTML body (or a SendGrid template id instead).")
