from __future__ import annotations

from django.urls import path

from events import views

urlpatterns = [
    path("batch", views.batch, name="ingest-batch"),
    # Segment's older name for batch, which its classic Android SDK (analytics-android) posts to.
    path("import", views.batch, name="ingest-import"),
    path("track", views.track, name="ingest-track"),
    path("identify", views.identify, name="ingest-identify"),
    path("openapi.json", views.openapi, name="openapi"),
]
