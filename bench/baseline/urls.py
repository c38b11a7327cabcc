"""P2's baselines, each served at the ingest API's paths by the same gunicorn and settings as the
real app (so the same middleware, which the ingest paths skip in part, triggermail/middleware.py).

- `minimal` (this URLconf, bench.baseline.settings): the minimal Django JSON view, no database.
- `insert` (bench.baseline.insert_urls, bench.baseline.insert_settings): the same view doing one
  durable INSERT of the posted JSON (autocommit, so one round trip that ends in a WAL flush; ON
  CONFLICT DO NOTHING on its messageId) into a table of its own, `bench_insert` (BASELINE_TABLE_SQL,
  created by the bench before that server starts).
"""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

BASELINE_TABLE_SQL = "CREATE TABLE bench_insert (message_id text PRIMARY KEY, document jsonb NOT NULL)"
_INSERT = (
    "INSERT INTO bench_insert (message_id, document) SELECT d->>'messageId', d FROM (SELECT %s::jsonb AS d) AS posted"
    " ON CONFLICT DO NOTHING"
)


@csrf_exempt
def minimal(request: HttpRequest) -> JsonResponse:
    # Reading the body is the least a JSON API does; nothing is parsed or stored.
    _ = request.body
    return JsonResponse({"success": True})


@csrf_exempt
def insert(request: HttpRequest) -> JsonResponse:
    # PostgreSQL parses the JSON; Django runs in autocommit, so the INSERT is its own transaction.
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, [request.body.decode()])
    return JsonResponse({"success": True})


urlpatterns = [path("v1/track", minimal), path("v1/batch", minimal)]
