"""The simulator page: what every rule would do with an event, and why, without sending anything.

A GET form: a simulation stores nothing, so a result can be linked (e.g. `?event=42`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from campaigns.authoring.preview_forms import SimulatorForm, event_chosen, simulator_fields
from campaigns.authoring.simulator import simulation_run


def simulator_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("campaigns.view_rule"):
        raise PermissionDenied
    form = SimulatorForm(_data(request.GET)) if request.GET else SimulatorForm()
    simulation = None
    if form.is_bound and form.is_valid():
        simulation = simulation_run(form.simulated_event(), traits=form.cleaned_data["traits"], now=timezone.now())
    context = {
        **admin.site.each_context(request),
        "title": "Simulator",
        "form": form,
        "simulation": simulation,
    }
    return TemplateResponse(request, "admin/campaigns/simulator.html", context)


def _data(query: Any) -> Any:
    """The query, or the chosen event's fields when asked to use it (or when only the event is named)."""
    event = event_chosen(query.get("event"))
    if event is not None and ("_load" in query or "name" not in query):
        return simulator_fields(event)
    return query
