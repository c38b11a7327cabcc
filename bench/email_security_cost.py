"""What the email security passes cost per email: CPU time, best of 5 runs of N calls.

- the safe-link pass (campaigns.authoring.safe_links.html_links_sanitize) over the demo Cart
  recovery email's HTML, rendered with a normal cart_url;
- one unsubscribe token (campaigns.consent.tokens.consent_token), which every email builds.

    python -m bench.email_security_cost [--calls 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import timeit
from collections.abc import Callable


def _cpu_microseconds(function: Callable[[], object], calls: int) -> float:
    timer = timeit.Timer(function, timer=time.process_time)
    return min(timer.repeat(number=calls, repeat=5)) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggermail.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    import django

    django.setup()
    from django.utils import timezone

    from campaigns.authoring.demo import DEMO_CAMPAIGN
    from campaigns.authoring.rendering import render_context, template_render
    from campaigns.authoring.safe_links import html_links_sanitize
    from campaigns.consent.tokens import consent_token
    from campaigns.models import Template
    from events.models import Contact

    document = json.loads(DEMO_CAMPAIGN.read_text(encoding="utf-8"))
    source = document["templates"]["Cart recovery"]["html_body"]
    context = render_context(
        properties={"cart_url": "https://shop.example.com/cart/7", "value": 30},
        user_id="u1",
        email="u1@example.com",
        traits={"first_name": "Ann"},
        preferences_url="https://mail.example.com/u/token/",
    )
    html = template_render(Template(subject="s", text_body="", html_body=source), context).html
    contact = Contact(pk=123456, user_id="u1", email="u1@example.com")
    print(
        f"safe-link pass over the demo email ({len(html)} characters): "
        f"{_cpu_microseconds(lambda: html_links_sanitize(html), args.calls):.0f} µs CPU"
    )
    print(
        f"one unsubscribe token ({len(consent_token(contact, now=timezone.now()))} characters): "
        f"{_cpu_microseconds(lambda: consent_token(contact, now=timezone.now()), args.calls):.0f} µs CPU"
    )


if __name__ == "__main__":
    main()
