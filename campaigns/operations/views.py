"""Operators' endpoints: /healthz (the process answers), /readyz (the pipeline keeps up), /metrics.

/healthz and /readyz carry no secrets and need no credentials, so load balancers can poll them;
/metrics is private: 404 unless METRICS_TOKEN is set, then only for `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from campaigns.operations.health import readiness_checks
from campaigns.operations.health_metrics import PipelineCollector
from triggermail.metrics import metrics_registry


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    # No database: a web process that answers is alive, whatever the database or the workers do.
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = readiness_checks(now=timezone.now())
    ready = all(check.ok for check in checks)
    body = {"status": "ok" if ready else "unavailable", "checks": {c.name: c.as_json() for c in checks}}
    response = JsonResponse(body, status=200 if ready else 503)
    response["Cache-Control"] = "no-store"
    # Django logs every 5xx as an error; polled every second by a load balancer, a pipeline that is
    # not ready would fill the log with one line per poll, saying what the body already says.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token:
        # Unconfigured, the endpoint does not exist: metrics are never public by accident.
        raise Http404
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        response = HttpResponse("a bearer token is required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="TriggerMail metrics"'
        return response
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return HttpResponse("wrong token\n", status=403, content_type="text/plain")
    registry = metrics_registry(extra=[PipelineCollector()])
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
