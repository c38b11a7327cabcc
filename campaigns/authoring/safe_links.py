"""Safe links: no URL attribute of a rendered email may carry a scheme outside SAFE_LINK_SCHEMES.

Django's autoescape stops event data from breaking out of an attribute, but not from choosing the
URL's scheme: `cart_url = "javascript:alert(document.cookie)"` in `<a href="{{ event.cart_url }}">`
stays a javascript: link. So every rendered HTML body goes through `html_links_sanitize`, which
reads it with the standard library's HTML tokenizer (the one that decodes character references
the way HTML5 does, so `&#106;avascript:` is seen as what a mail client would see) and removes
each URL attribute whose scheme is not allowed. Only those tags are rewritten; every other byte of
the email is left as the marketer wrote it (a sanitizer library such as nh3 re-serializes the
whole document and drops <head>, <style> and the doctype that email HTML relies on).

The check is an allow-list, not a block-list of javascript:, data: and vbscript:, because other
schemes hand the click to a program on the reader's machine (file:, ms-msdt:, search-ms: have all
been used that way). `html_links_sanitize` also reports what it removed, for the preview.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from django.conf import settings

# Attributes whose value a mail client or browser treats as a URL to follow or load.
URL_ATTRIBUTES = frozenset(
    {
        "href",
        "src",
        "action",
        "formaction",
        "background",
        "poster",
        "cite",
        "longdesc",
        "usemap",
        "lowsrc",
        "dynsrc",
        "data",
        "codebase",
        "classid",
        "archive",
        "manifest",
        "ping",
        "icon",
        "profile",
        "xlink:href",
        "srcset",
    }
)
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")
# Browsers ignore ASCII tab and newline anywhere in a URL and strip C0 controls and spaces around
# it (WHATWG URL). Removing every control character and space is stricter still: old clients
# skipped NULs too, and a legitimate scheme never contains any of them.
_IGNORED = re.compile(r"[\x00-\x20\x7f]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def link_schemes() -> frozenset[str]:
    return frozenset(scheme.lower() for scheme in settings.SAFE_LINK_SCHEMES)


def url_scheme(url: str) -> str:
    """The scheme a mail client would see in an attribute's (already entity-decoded) value; "" if relative."""
    match = _SCHEME.match(_IGNORED.sub("", url))
    return match.group(1).lower() if match else ""


def url_is_safe(url: str, schemes: frozenset[str] | None = None) -> bool:
    scheme = url_scheme(url)
    return not scheme or scheme in (schemes if schemes is not None else link_schemes())


def _attribute_is_safe(name: str, value: str, schemes: frozenset[str]) -> bool:
    if name == "srcset":
        # "url 1x, url 2x": each candidate is a URL followed by an optional descriptor.
        return all(url_is_safe(candidate.strip().split(" ")[0], schemes) for candidate in value.split(","))
    return url_is_safe(value, schemes)


@dataclass(frozen=True)
class RemovedLink:
    tag: str
    attribute: str
    value: str

    def __str__(self) -> str:
        # Control characters are the disguise, so they are shown (a tab as \x09); a data: URL can be
        # megabytes, so only its start is.
        value = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", self.value)
        return f'<{self.tag} {self.attribute}="{value[:80]}{"…" if len(value) > 80 else ""}">'


class _LinkFinder(HTMLParser):
    """Finds start tags with an unsafe URL attribute; `edits` are (offset, length, replacement)."""

    def __init__(self, schemes: frozenset[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.schemes = schemes
        self.edits: list[tuple[tuple[int, int], int, str]] = []
        self.removed: list[RemovedLink] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        unsafe = [
            (name, value)
            for name, value in attrs
            if name in URL_ATTRIBUTES and value is not None and not _attribute_is_safe(name, value, self.schemes)
        ]
        if not unsafe:
            return
        original = self.get_starttag_text() or ""
        kept = [(name, value) for name, value in attrs if (name, value) not in unsafe]
        self.edits.append((self.getpos(), len(original), _start_tag(tag, kept, original.endswith("/>"))))
        self.removed.extend(RemovedLink(tag, name, value or "") for name, value in unsafe)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def _start_tag(tag: str, attrs: list[tuple[str, str | None]], self_closing: bool) -> str:
    parts = [tag] + [name if value is None else f'{name}="{html.escape(value)}"' for name, value in attrs]
    return "<" + " ".join(parts) + (" />" if self_closing else ">")


def html_links_sanitize(text: str, schemes: frozenset[str] | None = None) -> tuple[str, list[RemovedLink]]:
    """The HTML with every unsafe URL attribute removed, and what was removed."""
    if not text:
        return text, []
    finder = _LinkFinder(schemes if schemes is not None else link_schemes())
    finder.feed(text)
    finder.close()
    if not finder.edits:
        return text, []
    # The tokenizer reports (line, column); line starts turn them into offsets in the text.
    line_starts = [0] + [match.end() for match in re.finditer("\n", text)]
    pieces, cursor = [], 0
    for (line, column), length, replacement in finder.edits:
        start = line_starts[line - 1] + column
        pieces += [text[cursor:start], replacement]
        cursor = start + length
    pieces.append(text[cursor:])
    return "".join(pieces), finder.removed


# --- Warnings for the preview ---------------------------------------------------------------------

_VARIABLE = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.DOTALL)
# Inside a tag, an attribute whose value has begun and runs up to here: name, quote, literal so far.
_OPEN_ATTRIBUTE = re.compile(r"([^\s\"'<>/=]+)\s*=\s*([\"']?)([^\"'<>]*)$")
# Our own links (campaigns.consent.policy), which no event can change.
_OWN_VARIABLES = frozenset({"unsubscribe_url", "preferences_url"})
_SOURCES = {"event": "event data", "contact": "the contact's traits"}


def template_link_warnings(html_source: str) -> list[str]:
    """One warning per URL attribute of an HTML template whose scheme a variable decides.

    `href="https://shop.example.com/{{ event.path }}"` has its scheme fixed by the template and is
    not mentioned; `href="{{ event.cart_url }}"` is, since the event's sender picks the scheme.
    """
    warnings = []
    for match in _VARIABLE.finditer(html_source):
        expression = match.group(1)
        root = re.split(r"[.|\s]", expression, maxsplit=1)[0]
        opening = _attribute_opening(html_source[: match.start()])
        if root in _OWN_VARIABLES or opening is None:
            continue
        tag, attribute, quote = opening
        source = _SOURCES.get(root, f"the variable {root!r}")
        allowed = ", ".join(sorted(link_schemes()))
        warnings.append(
            f"The link in <{tag} {attribute}={quote}{{{{ {expression} }}}}{quote}> comes from {source}: "
            f"links with any scheme but {allowed} are removed when the email is rendered."
        )
    return warnings


def _attribute_opening(before: str) -> tuple[str, str, str] | None:
    """(tag, attribute, quote) when `before` ends inside a URL attribute with no scheme fixed yet."""
    tag_start = before.rfind("<")
    if tag_start < 0 or ">" in before[tag_start:]:
        return None
    inside = before[tag_start + 1 :]
    attribute = _OPEN_ATTRIBUTE.search(inside)
    if attribute is None or attribute.group(1).lower() not in URL_ATTRIBUTES:
        return None
    # A literal ':', '/', '?' or '#' before the variable settles the scheme (or makes it relative).
    if re.search(r"[:/?#]", _IGNORED.sub("", attribute.group(3))):
        return None
    return inside.split(None, 1)[0].lower(), attribute.group(1).lower(), attribute.group(2)
