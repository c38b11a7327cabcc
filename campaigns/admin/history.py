"""History in the admin: every save, delete and pause of a rule or template is recorded, the change
page's "History" button lists the records with a readable diff, and a version can be restored.

`HistoryAdmin` is a base for RuleAdmin and TemplateAdmin; `ChangeRecordAdmin` lists every record,
including those of deleted objects.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Model, OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.safestring import SafeString, mark_safe

from campaigns.admin.display import ReadOnlyAdmin
from campaigns.authoring.history import BASELINE_ACTION, RestoreError, change_record, snapshot_load, version_restore
from campaigns.authoring.history_diff import snapshot_diff
from campaigns.models import ChangeRecord
from triggermail.times import time_text

HISTORY_PAGE_SIZE = 50


def last_change_annotations(kind: str) -> dict[str, Subquery]:
    """`last_change_at` and `last_change_user` of each row, as subqueries rather than a query per row."""
    latest = ChangeRecord.objects.filter(kind=kind, object_id=OuterRef("pk")).order_by("-version")
    return {
        "last_change_at": Subquery(latest.values("created_at")[:1]),
        "last_change_user": Subquery(latest.values("user")[:1]),
    }


def last_change_text(obj: Model) -> str:
    at = getattr(obj, "last_change_at", None)
    if at is None:
        return "—"
    return f"{time_text(at)} by {getattr(obj, 'last_change_user', '') or 'a command'}"


def change_diff_html(record: ChangeRecord) -> SafeString:
    html = render_to_string(
        "admin/campaigns/includes/change_diff.html",
        {
            "record": record,
            "changes": snapshot_diff(record.before, record.after),
            "baseline": record.action == BASELINE_ACTION,
        },
    )
    return mark_safe(html)  # rendered by an autoescaping template


class HistoryAdmin(admin.ModelAdmin):
    """Records every change made through this admin and serves the object's history and restore pages."""

    history_kind: str = ""

    # The form has already copied the new values onto `obj` when save_model runs, so "before" is read
    # from the database; it rides on the form (one per request) until save_related has saved the inlines.
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: Any) -> None:
        form.history_before = snapshot_load(self.history_kind, obj.pk) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: Any) -> None:
        super().save_related(request, form, formsets, change)
        # After the inlines, so a rule's "after" holds its conditions as saved.
        change_record(kind=self.history_kind, object_id=form.instance.pk, action="changed" if change else "created",
                      user=request.user.get_username(), before=getattr(form, "history_before", None))  # fmt: skip

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        object_id, before = obj.pk, snapshot_load(self.history_kind, obj.pk)
        super().delete_model(request, obj)
        change_record(kind=self.history_kind, object_id=object_id, action="deleted",
                      user=request.user.get_username(), before=before)  # fmt: skip

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            before = {pk: snapshot_load(self.history_kind, pk) for pk in queryset.values_list("pk", flat=True)}
            super().delete_queryset(request, queryset)
            for object_id, snapshot in before.items():
                change_record(kind=self.history_kind, object_id=object_id, action="deleted",
                              user=request.user.get_username(), before=snapshot)  # fmt: skip

    def get_urls(self) -> list[URLPattern]:
        info = (self.opts.app_label, self.opts.model_name)
        restore = path(
            "<path:object_id>/history/<int:version>/restore/",
            self.admin_site.admin_view(self.history_restore_view),
            name="{}_{}_restore".format(*info),
        )
        # Before the admin's own patterns, whose "<path:object_id>/" would swallow this one.
        return [restore, *super().get_urls()]

    def _history_object(self, request: HttpRequest, object_id: str) -> Model:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with id {object_id}; its records are under Change records.")
        return obj

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        obj = self._history_object(request, object_id)
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        records = ChangeRecord.objects.filter(kind=self.history_kind, object_id=obj.pk).order_by("-version")
        page = Paginator(records, HISTORY_PAGE_SIZE).get_page(request.GET.get("p"))
        current = snapshot_load(self.history_kind, obj.pk)
        context = {
            **self._object_context(request, obj, title=f"History: {obj}"),
            "page": page,
            "rows": [(record, change_diff_html(record), record.after not in (None, current)) for record in page],
            "can_restore": self.has_change_permission(request, obj),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/campaigns/history.html", context)

    def _object_context(self, request: HttpRequest, obj: Any, *, title: str) -> dict[str, Any]:
        """What both history pages of one object show around their content: the admin's frame."""
        return {**self.admin_site.each_context(request), "title": title, "opts": self.opts, "object": obj}

    def history_restore_view(self, request: HttpRequest, object_id: str, version: int) -> HttpResponse:
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        obj = self._history_object(request, object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        record = ChangeRecord.objects.filter(kind=self.history_kind, object_id=obj.pk, version=version).first()
        if record is None:
            raise Http404(f"No version #{version} of this {self.opts.verbose_name}.")
        history_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_history", args=[obj.pk])
        if request.method == "POST":
            return self._history_restore(request, record, history_url)
        current = snapshot_load(self.history_kind, obj.pk)
        context = {
            **self._object_context(request, obj, title=f"Restore version #{record.version} of {obj}?"),
            "record": record,
            "changes": snapshot_diff(current, record.after),
            "history_url": history_url,
        }
        return TemplateResponse(request, "admin/campaigns/history_restore.html", context)

    def _history_restore(self, request: HttpRequest, record: ChangeRecord, history_url: str) -> HttpResponse:
        try:
            restored = version_restore(record, user=request.user.get_username())
        except RestoreError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            if restored is None:
                self.message_user(request, f"Nothing to restore: it already is as in version #{record.version}.")
            else:
                text = (
                    f"Restored version #{record.version}; it applies to the next event. "
                    f"Recorded as version #{restored.version}."
                )
                self.message_user(request, text, messages.SUCCESS)
        return HttpResponseRedirect(history_url)


@admin.register(ChangeRecord)
class ChangeRecordAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "kind", "object_name", "version_number", "action", "who"]
    list_filter = ["kind", "user"]
    search_fields = ["object_name", "user", "action"]
    fields = ["kind", "object_name", "object_id", "version_number", "action", "who", "created_at", "diff"]
    readonly_fields = ["version_number", "who", "diff"]

    @admin.display(description="Version", ordering="version")
    def version_number(self, record: ChangeRecord) -> str:
        return f"#{record.version}"

    @admin.display(description="Who", ordering="user")
    def who(self, record: ChangeRecord) -> str:
        return record.user or "a command"

    @admin.display(description="What changed")
    def diff(self, record: ChangeRecord) -> SafeString:
        return change_diff_html(record)
