"""The email's HTML in the preview page's frame, served on its own URL with a policy of its own.

A `srcdoc` frame would inherit the Admin's Content-Security-Policy, which refuses what email HTML is
made of (inline styles, images from anywhere), so the preview would not show the email as a mail
client does. The preview page keeps the rendered HTML in the session under a random token and the
frame loads it from here, answered with a policy for mail: no script at all (as in a mail client),
styles and images from anywhere, sandboxed into an origin of its own, framed only by this site.
"""

from __future__ import annotations

import secrets

from csp.constants import NONE, SELF, UNSAFE_INLINE
from csp.decorators import csp
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.clickjacking import xframe_options_sameorigin

SESSION_KEY = "template_preview_frames"
# The last few previews a person opened (tabs side by side, the back button) stay viewable.
KEPT = 8
MAIL_POLICY = {
    "default-src": [NONE],
    "img-src": ["*", "data:", "cid:"],
    "style-src": ["*", UNSAFE_INLINE],
    "font-src": ["*", "data:"],
    "base-uri": [NONE],
    "form-action": [NONE],
    "frame-ancestors": [SELF],
    # As the page's <iframe sandbox>: scripts, forms and popups off, and an origin of its own.
    "sandbox": True,
}


def preview_frame_store(request: HttpRequest, html: str) -> str:
    """Keep `html` for this person's session; the token for `template_preview_frame_view`."""
    frames: dict[str, str] = request.session.get(SESSION_KEY, {})
    token = secrets.token_urlsafe(16)
    frames[token] = html
    request.session[SESSION_KEY] = dict(list(frames.items())[-KEPT:])
    return token


@xframe_options_sameorigin
@csp(MAIL_POLICY)  # type: ignore[arg-type]  # django-csp types views as taking the request alone
def template_preview_frame_view(request: HttpRequest, template_id: int, token: str) -> HttpResponse:
    if not request.user.has_perm("campaigns.view_template"):
        raise PermissionDenied
    html = request.session.get(SESSION_KEY, {}).get(token)
    if html is None:
        raise Http404("This preview has expired: preview the template again.")
    return HttpResponse(html, content_type="text/html; charset=utf-8")
