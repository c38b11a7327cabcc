"""The provider's session sends what requests would send, byte for byte, and fails as requests fails.

campaigns.sending.provider_session prepares a request once per URL and headers and only sets each
message's body; these compare what a local server receives from it and from a plain requests.Session,
and check the paths it leaves to requests (hooks, per-call settings) and the errors it raises.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from campaigns.sending.provider_session import ProviderSession


@dataclass
class Recorder:
    """A local HTTP server that records each request; /moved answers 307 to /v3/mail/send."""

    url: str = ""
    received: list[tuple[str, str, list[tuple[str, str]], bytes]] = field(default_factory=list)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    record = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            record.received.append((self.command, self.path, list(self.headers.items()), body))
            if self.path == "/moved":
                self.send_response(307)
                self.send_header("Location", "/v3/mail/send")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            answer = json.dumps({"path": self.path}).encode()
            self.send_response(202)
            self.send_header("X-Message-Id", f"id-{len(record.received)}")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    record.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield record
    server.shutdown()
    server.server_close()


def _post(session: requests.Session, url: str, body: str, **options: Any) -> requests.Response:
    # As Anymail's post_to_esp calls it.
    headers = {"Authorization": "Bearer SG.key", "Content-Type": "application/json"}
    return session.request(
        method="POST", url=url, params=None, data=body, headers=headers, files=None, auth=None, timeout=5, **options
    )


def test_each_message_is_sent_exactly_as_requests_sends_it(recorder):
    bodies = ['{"n": 1}', '{"n": 22, "text": "caf\\u00e9"}', "{}"]
    for session in (requests.Session(), ProviderSession()):
        answers = [_post(session, f"{recorder.url}/v3/mail/send", body) for body in bodies]
        assert [a.status_code for a in answers] == [202] * 3
        assert [a.json() for a in answers] == [{"path": "/v3/mail/send"}] * 3
        assert all(a.request.body == b for a, b in zip(answers, bodies, strict=True))

    by_requests, by_ours = recorder.received[:3], recorder.received[3:]
    assert by_ours == by_requests
    assert [body for *_, body in by_ours] == [b.encode() for b in bodies]
    assert ("Content-Length", "8") in by_ours[0][2]
    assert ("Authorization", "Bearer SG.key") in by_ours[0][2]


def test_a_redirect_is_followed_as_requests_follows_it(recorder):
    answers = [_post(s, f"{recorder.url}/moved", '{"n": 1}') for s in (requests.Session(), ProviderSession())]

    assert [a.status_code for a in answers] == [202, 202]
    assert [[r.status_code for r in a.history] for a in answers] == [[307], [307]]
    assert [(method, path, body) for method, path, _, body in recorder.received] == [
        ("POST", "/moved", b'{"n": 1}'),
        ("POST", "/v3/mail/send", b'{"n": 1}'),
    ] * 2


def _counting_prepares(session: ProviderSession, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    prepared: list[str] = []
    real_prepare = session.prepare_request

    def prepare(request: requests.Request) -> requests.PreparedRequest:
        prepared.append(str(request.url))
        return real_prepare(request)

    monkeypatch.setattr(session, "prepare_request", prepare)
    return prepared


def test_a_request_is_prepared_once_per_url_and_headers(recorder, monkeypatch):
    session = ProviderSession()
    prepared = _counting_prepares(session, monkeypatch)
    url = f"{recorder.url}/v3/mail/send"

    for _ in range(3):
        _post(session, url, "{}")
    _post(session, f"{recorder.url}/v3/other", "{}")

    assert prepared == [url, f"{recorder.url}/v3/other"]


def test_hooks_and_per_call_settings_go_through_requests_own_path(recorder, monkeypatch):
    url = f"{recorder.url}/v3/mail/send"
    hooked = ProviderSession()
    seen: list[int] = []
    hooked.hooks["response"].append(lambda response, **kwargs: seen.append(response.status_code))
    hooked_prepares = _counting_prepares(hooked, monkeypatch)
    _post(hooked, url, "{}")
    _post(hooked, url, "{}")
    assert seen == [202, 202]
    assert hooked_prepares == [url, url]

    not_following = ProviderSession()
    prepares = _counting_prepares(not_following, monkeypatch)
    assert _post(not_following, f"{recorder.url}/moved", "{}", allow_redirects=False).status_code == 307
    assert _post(not_following, f"{recorder.url}/moved", "{}", allow_redirects=False).status_code == 307
    assert prepares == [f"{recorder.url}/moved"] * 2


def test_a_refused_connection_and_a_timeout_raise_what_requests_raises():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/v3/mail/send"
    with pytest.raises(requests.ConnectionError):
        _post(ProviderSession(), closed, "{}")

    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v3/mail/send"
        session = ProviderSession()
        with pytest.raises(requests.ReadTimeout):
            session.request("POST", url, data="{}", headers={}, timeout=0.2)
