"""Rendering a template with an event's properties and a contact's traits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.template import Context, Engine, TemplateSyntaxError
from django.template import Template as DjangoTemplate

from campaigns.authoring.safe_links import RemovedLink, html_links_sanitize
from campaigns.models import Template

# HTML bodies are escaped; subjects and text bodies are plain text and must not be.
_HTML = Engine(autoescape=True, debug=True)
_TEXT = Engine(autoescape=False, debug=True)

# A value of the context made only if a template uses it: Django's template language calls a callable
# it finds in the context when it reads it. The unsubscribe link is one (campaigns.sending.message):
# its token is encrypted, and a receipt's template usually has no link to unsubscribe.
Deferred = Callable[[], str]


class RenderError(Exception):
    def __init__(self, part: str, message: str, line: int | None = None) -> None:
        where = f"{part}, line {line}" if line else part
        super().__init__(f"{where}: {message}")
        self.part = part
        self.line = line


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    # Links and images the safe-link pass took out of the HTML body (campaigns.authoring.safe_links).
    removed_links: list[RemovedLink] = field(default_factory=list)


def render_context(
    *,
    properties: dict[str, Any],
    user_id: str,
    email: str,
    traits: dict[str, Any],
    unsubscribe_url: str | Deferred = "",
    preferences_url: str | Deferred = "",
) -> dict[str, Any]:
    """The data a template sees: {{ event.<property> }}, {{ contact.<trait> }} and the contact's
    {{ unsubscribe_url }} and {{ preferences_url }} (campaigns.consent.policy) for the footer."""
    return {
        "event": properties,
        "contact": {**traits, "user_id": user_id, "email": email},
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": preferences_url,
    }


def context_data(context: dict[str, Any]) -> dict[str, Any]:
    """The context as plain data, each deferred value made: what a SendGrid dynamic template merges."""
    return {name: value() if callable(value) else value for name, value in context.items()}


@lru_cache(maxsize=1024)
def _compiled(engine: Engine, source: str) -> DjangoTemplate:
    # A compiled template renders any number of contexts (and is safe to share between threads);
    # compiling costs more than rendering, and a rule sends the same template again and again.
    # Keyed by the source itself, so an edited template is compiled afresh on its next send.
    return DjangoTemplate(source, engine=engine)


def _render(engine: Engine, part: str, source: str, context: dict[str, Any]) -> str:
    if not source:
        return ""  # an empty part (a template with no HTML body) renders as nothing: no need to ask Django
    try:
        template = _compiled(engine, source)
        # A Context escapes HTML unless told otherwise, whatever the engine says.
        return template.render(Context(context, autoescape=engine.autoescape))
    except TemplateSyntaxError as exc:
        info = getattr(exc, "template_debug", None) or {}
        raise RenderError(part, str(exc), info.get("line")) from exc
    except Exception as exc:
        # Errors while rendering ({% include %} of a missing file, a filter that raises) are the
        # template's fault too: the send fails with the reason instead of crashing every retry.
        raise RenderError(part, f"{type(exc).__name__}: {exc}") from exc


def template_render(template: Template, context: dict[str, Any]) -> RenderedEmail:
    subject = _render(_TEXT, "subject", template.subject, context)
    # Autoescaping keeps data inside its attribute but lets it choose a link's scheme; the safe-link
    # pass removes every link whose scheme is not allowed, whoever wrote it.
    html, removed = html_links_sanitize(_render(_HTML, "HTML body", template.html_body, context))
    return RenderedEmail(
        # A subject is one line; a newline in it would break the message headers.
        subject=" ".join(subject.split()),
        text=_render(_TEXT, "text body", template.text_body, context),
        html=html,
        removed_links=removed,
    )
