"""What building one SendGrid request body costs: CPU time per message, best of 5 runs of N messages.

Anymail's own SendGrid backend against campaigns.sending.sendgrid_backend (the project's, which
parses addresses for less CPU), on a message shaped as a send's: one bare contact address, the
template's "Name <address>" from, metadata, tags and the one-click unsubscribe headers. The
payload is built and serialized to JSON; nothing is sent.

    python -m bench.payload_cpu [--messages 2000]
"""

from __future__ import annotations

import argparse
import os
import time
import timeit
from typing import Any


def _message(n: int) -> Any:
    from anymail.message import AnymailMessage

    message = AnymailMessage(
        to=[f"user-{n}@example.com"], from_email="TriggerMail <hello@example.com>", subject="Hi", body="Hello"
    )
    message.metadata = {"triggermail_key": f"key-{n}", "triggermail_send": str(n)}
    message.tags = ["marketing", "Cart recovery"]
    message.extra_headers.update(
        {"List-Unsubscribe": "<https://example.com/u/token>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    )
    return message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggermail.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    import django

    django.setup()
    from anymail.backends.sendgrid import EmailBackend as AnymailSendGridBackend

    from campaigns.sending.sendgrid_backend import EmailBackend

    messages = [_message(n) for n in range(args.messages)]
    for name, backend_class in (("anymail", AnymailSendGridBackend), ("project", EmailBackend)):
        backend = backend_class(api_key="bench", api_url="http://127.0.0.1:9/v3/")

        def build(backend: Any = backend) -> None:
            for message in messages:
                backend.build_message_payload(message, {}).serialize_data()

        best = min(timeit.Timer(build, timer=time.process_time).repeat(number=1, repeat=5))
        print(f"{name} SendGrid backend: {best / len(messages) * 1e6:.1f} µs CPU per message")


if __name__ == "__main__":
    main()
