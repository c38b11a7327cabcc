"""One view at the ingest API's paths: read the body, answer what /v1/track answers."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def minimal(request: HttpRequest) -> JsonResponse:
    # Reading the body is the least a JSON API does; nothing is parsed or stored.
    _ = request.body
    return JsonResponse({"success": True})


urlpatterns = [path("v1/track", minimal), path("v1/batch", minimal)]
