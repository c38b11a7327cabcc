"""The published OpenAPI description of the ingest API (served at /v1/openapi.json)."""

from __future__ import annotations

from typing import Any


def openapi_document(*, base_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "TriggerMail ingest API", "version": "1"},
        "servers": [{"url": base_url}],
        "paths": {},
    }
