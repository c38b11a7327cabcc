"""A SendGrid-compatible server fast enough for the throughput benchmarks, in a process of its own.

harness/sendgrid_server.py starts a thread per request and sleeps in it; at 1,000 emails/s that
server, not TriggerMail, would be what the benchmark measures. This one is asyncio (aiohttp, on
uvloop when available) with HTTP/1.1 keep-alive, and its "realistic response time" is an
`asyncio.sleep`, which costs no CPU: the 2 cores stay with the system under test.

It checks what SendGrid checks (the Bearer key, a JSON body with personalizations[].to[].email,
from.email, a subject or template_id) and answers 202 with an X-Message-Id, or 400/401 naming
the problem. Every accepted message is one line of the ledger file, which the benchmark tails:

    <received_at epoch seconds>\t<custom_args.triggermail_key>\t<custom_args.triggermail_send>\t<to>

`received_at` is taken when the request arrives, before the simulated latency: "the provider
received it" is the moment the benchmark's latencies end.

    python -m bench.sendgrid_fast --ledger PATH [--port 0] [--latency 0.05] [--api-key KEY]

It prints `listening on http://127.0.0.1:<port>/v3/` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web

DEFAULT_API_KEY = "SG.bench-key"
LEDGER_FLUSH_EVERY = 0.05


def payload_problem(payload: Any) -> str:
    """What SendGrid would refuse in this /v3/mail/send body; "" when it is acceptable."""
    if not isinstance(payload, dict):
        return "the body must be a JSON object"
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        return "personalizations must be a non-empty list"
    for p in personalizations:
        to = p.get("to") if isinstance(p, dict) else None
        if not isinstance(to, list) or not to or not all(isinstance(r, dict) and r.get("email") for r in to):
            return "every personalization needs to[].email"
    sender = payload.get("from")
    if not isinstance(sender, dict) or not sender.get("email"):
        return "from.email is required"
    if not payload.get("subject") and not payload.get("template_id"):
        return "subject or template_id is required"
    custom_args = payload.get("custom_args", {})
    if not isinstance(custom_args, dict):
        return "custom_args must be an object"
    return ""


def _errors(status: int, message: str) -> web.Response:
    body = json.dumps({"errors": [{"message": message, "field": None}]})
    return web.Response(status=status, text=body, content_type="application/json")


class Provider:
    """The request handler and its ledger; one per server process."""

    def __init__(self, *, ledger: TextIO, api_key: str, latency: float) -> None:
        self.ledger = ledger
        self.api_key = api_key
        self.latency = latency

    async def mail_send(self, request: web.Request) -> web.Response:
        received_at = time.time()
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _errors(401, "The provided authorization grant is invalid, expired, or revoked")
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return _errors(400, "Bad Request: the body is not JSON")
        problem = payload_problem(payload)
        if problem:
            return _errors(400, problem)
        if self.latency:
            await asyncio.sleep(self.latency)
        args = payload.get("custom_args", {})
        to = payload["personalizations"][0]["to"][0]["email"]
        key, send = str(args.get("triggermail_key", "")), str(args.get("triggermail_send", ""))
        # Buffered; flushed every LEDGER_FLUSH_EVERY seconds, and the reader only takes whole lines.
        self.ledger.write(f"{received_at:.6f}\t{key}\t{send}\t{to}\n")
        return web.Response(status=202, headers={"X-Message-Id": uuid.uuid4().hex[:22]})


async def _ledger_flusher(ledger: TextIO) -> None:
    while True:
        await asyncio.sleep(LEDGER_FLUSH_EVERY)
        ledger.flush()


async def serve(*, port: int, ledger_path: Path, api_key: str, latency: float) -> None:
    with ledger_path.open("a", buffering=1 << 16) as ledger:
        provider = Provider(ledger=ledger, api_key=api_key, latency=latency)
        app = web.Application(client_max_size=10 * 1024 * 1024)
        app.router.add_post("/v3/mail/send", provider.mail_send)
        # No access log: at 1,000 requests/s it would cost more CPU than the answers do.
        runner = web.AppRunner(app, access_log=None, handle_signals=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024, reuse_address=True)
        await site.start()
        bound = runner.addresses[0][1]
        print(f"listening on http://127.0.0.1:{bound}/v3/", flush=True)
        flusher = asyncio.create_task(_ledger_flusher(ledger))
        try:
            await asyncio.Event().wait()
        finally:
            flusher.cancel()
            ledger.flush()
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ledger", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds before each answer (default 0.05)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(port=args.port, ledger_path=args.ledger, api_key=args.api_key, latency=args.latency))


if __name__ == "__main__":
    main()
