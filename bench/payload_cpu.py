"""What one SendGrid request costs this process: CPU time per message, best of 5 runs of N messages.

Two measures, each Anymail's own SendGrid backend against campaigns.sending.sendgrid_backend (the
project's), on a message shaped as a send's: one bare contact address, the template's "Name
<address>" from, metadata, tags and the one-click unsubscribe headers.

- "payload": the request body built and serialized to JSON; nothing is sent (the project's backend
  parses addresses for less CPU).
- "provider call": the whole call as a send makes it (campaigns.sending.provider.provider_send, one
  kept-alive connection) to bench.sendgrid_fast answering at once, started here; the project's
  backend also prepares the request once per URL (campaigns.sending.provider_session). The server's
  CPU is not counted.

    python -m bench.payload_cpu [--messages 2000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path
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

        print(f"payload, {name} SendGrid backend: {_best(build) / len(messages) * 1e6:.1f} µs CPU per message")
    _provider_calls(messages)


def _best(work: Callable[[], None]) -> float:
    return min(timeit.Timer(work, timer=time.process_time).repeat(number=1, repeat=5))


def _provider_calls(messages: list[Any]) -> None:
    from django.test.utils import override_settings

    from bench.provider import ProviderServer

    with tempfile.TemporaryDirectory() as log_dir:
        server = ProviderServer.start(env=dict(os.environ), log_dir=Path(log_dir), latency=0)
        try:
            anymail = {"SENDGRID_API_KEY": server.api_key, "SENDGRID_API_URL": server.url}
            for name, backend in (
                ("anymail", "anymail.backends.sendgrid"),
                ("project", "campaigns.sending.sendgrid_backend"),
            ):
                with override_settings(EMAIL_BACKEND=f"{backend}.EmailBackend", ANYMAIL=anymail):
                    seconds = _best(partial(_calls, messages))
                print(f"provider call, {name} SendGrid backend: {seconds / len(messages) * 1e6:.1f} µs CPU per message")
        finally:
            server.stop()


def _calls(messages: list[Any]) -> None:
    from campaigns.sending.provider import ProviderOutcome, provider_send

    for message in messages:
        result = provider_send(message)
        if result.outcome is not ProviderOutcome.ACCEPTED:
            raise SystemExit(f"the provider did not accept a message: {result.error}")


if __name__ == "__main__":
    main()
