"""P2's second baseline: one durable INSERT of the posted JSON at the ingest API's paths."""

from __future__ import annotations

from django.urls import path

from bench.baseline.urls import insert, minimal

# GET /ready tells the bench the server is up (bench.deploy waits for a 200).
urlpatterns = [path("v1/track", insert), path("v1/batch", insert), path("ready", minimal)]
