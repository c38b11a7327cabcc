"""The provider's HTTP session: requests, without redoing per message what is the same for every one.

Anymail posts each message with `session.request(...)`, and requests then builds the request from
nothing: merges the session's headers, cookies, auth, hooks and settings into it, parses and checks
the URL, then (in Session.send) reads cookies out of the answer and looks for redirects. For a
provider's API every message goes to the same URL with the same headers and only the body differs;
that preparation was about a quarter of the worker's CPU per provider call
(`python -m bench.payload_cpu`, "provider call" rows).

`ProviderSession.request` prepares the request for a (method, URL, headers) once and, for each
message, copies it and sets its body; the transport adapter then sends it exactly as Session.send
would (same connection pool, timeouts, TLS verification, proxies, and the same exceptions), and
the answer is read before returning, as requests does when not streaming. A redirect is followed as
requests follows it. What it leaves out: cookies (a provider's API sets none that matter; this
session keeps none) and response hooks (none are set; Anymail's DEBUG_API_REQUESTS sets one, and
then, as for anything else unusual — params, files, auth, json, per-call settings — the request goes
through requests' own path). The session's own headers and auth are read when a (method, URL,
headers) is first posted; Anymail sets them when it opens the session, before its first message.
"""

from __future__ import annotations

from typing import Any

import requests

# Distinct (method, URL, headers) a process posts to: one per provider account, a few in tests.
_MOST_PREPARED = 32


class ProviderSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self._prepared: dict[tuple[str, str, tuple[tuple[str, str], ...]], requests.PreparedRequest] = {}

    def request(  # type: ignore[override]  # the same parameters, passed on as given
        self,
        method: str,
        url: str,
        params: Any = None,
        data: Any = None,
        headers: Any = None,
        timeout: Any = None,
        **options: Any,
    ) -> requests.Response:
        if not self._plain(data, params, headers, options):
            return super().request(method, url, params=params, data=data, headers=headers, timeout=timeout, **options)
        prepared = self._template(method, url, headers).copy()
        prepared.prepare_body(data, None)
        send = {"stream": False, "timeout": timeout, "verify": self.verify, "cert": self.cert, "proxies": self.proxies}
        response = self.get_adapter(url=url).send(prepared, **send)
        if response.is_redirect:
            history = [response, *self.resolve_redirects(response, prepared, **send)]
            response = history.pop()
            response.history = history
        response.content  # noqa: B018  # read now, as requests does when not streaming
        return response

    def _plain(self, data: Any, params: Any, headers: Any, options: dict[str, Any]) -> bool:
        """A body, the session's own settings, nothing else: what this path sends as requests would."""
        given = {name: value for name, value in options.items() if value is not None}
        return (
            isinstance(data, str | bytes)
            and not params
            and isinstance(headers, dict | None)
            and given in ({}, {"allow_redirects": True})
            and not any(self.hooks.values())
            and not self.cookies
        )

    def _template(self, method: str, url: str, headers: dict[str, str] | None) -> requests.PreparedRequest:
        key = (method.upper(), url, tuple((headers or {}).items()))
        template = self._prepared.get(key)
        if template is None:
            if len(self._prepared) >= _MOST_PREPARED:
                self._prepared.clear()
            # Everything but the body, merged with the session's settings by requests itself.
            template = self.prepare_request(requests.Request(key[0], url, headers=headers))
            self._prepared[key] = template
        return template
