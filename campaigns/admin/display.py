"""Small display helpers shared by the TriggerMail admin pages."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Model
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString


def admin_url(obj: Model) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def admin_link(obj: Model | None, label: str | None = None) -> SafeString | str:
    if obj is None:
        return "—"
    return format_html('<a href="{}">{}</a>', admin_url(obj), label or str(obj))


def pretty_json(value: Any) -> SafeString:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre class="tm-pre">{}</pre>', text)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the system: people look at them, and never add, edit or delete them here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@dataclass(frozen=True)
class ActionGate:
    """Whether an admin action may act now; when not, what to answer (None: a warning was shown)."""

    proceed: bool
    answer: TemplateResponse | None = None


@dataclass(frozen=True)
class ActionQuestion:
    """How an admin action asks before it acts, as Django's "delete selected" does: `nothing` is the
    warning when no selected row applies; else, until confirmed, the page `template` titled `title`
    lists the rows that apply under `name`, and its form posts the action again with post=yes."""

    title: str
    template: str
    name: str
    nothing: str

    def gate(
        self, modeladmin: admin.ModelAdmin[Any], request: HttpRequest, *, chosen: Sequence[Model], selected: int
    ) -> ActionGate:
        """`chosen`: the rows of the `selected` ticked ones that the action applies to."""
        if not chosen:
            modeladmin.message_user(request, self.nothing, messages.WARNING)
            return ActionGate(proceed=False)
        if request.POST.get("post") == "yes":
            return ActionGate(proceed=True)
        page = TemplateResponse(
            request,
            self.template,
            {
                **modeladmin.admin_site.each_context(request),
                "title": self.title,
                "opts": modeladmin.model._meta,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                self.name: chosen,
                "skipped": selected - len(chosen),
            },
        )
        return ActionGate(proceed=False, answer=page)
