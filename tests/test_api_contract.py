"""The published OpenAPI document is the contract: schemathesis holds gunicorn, as shipped, to it.

schemathesis reads /v1/openapi.json from the running server, generates requests from it (valid
ones, and invalid ones in every way the schema allows it to imagine), sends them with a write key
made for the test, and checks every answer: no 5xx, and every status code, content type, header and
body is one the document declares. Deterministic (the same requests on every run), bounded so that
`make test` stays quick; `make contract` runs the same test with many more examples.
"""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from harness.processes import BASE_DIR, VENV_BIN

# Requests per operation and generation phase. `make contract` raises it (CONTRACT_EXAMPLES).
EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "150"))
CHECKS = [
    # What the server answers: never a 5xx; only declared statuses, content types, headers, bodies.
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    # What the server accepts: a request the schema calls invalid is refused (the document is not
    # stricter than the server, as it was for sentAt: null), one it calls valid is stored (the server
    # enforces no limit the document leaves out, as it did for the timestamp range, NUL characters
    # and IANA zones), and no request goes through without its write key.
    "negative_data_rejection",
    "positive_data_acceptance",
    "ignored_auth",
]

pytestmark = pytest.mark.e2e


def schemathesis_run(base_url: str, write_key: str, report_dir: str) -> subprocess.CompletedProcess[str]:
    argv = [
        str(VENV_BIN / "st"),
        "run",
        f"{base_url}/v1/openapi.json",
        f"--checks={','.join(CHECKS)}",
        f"--max-examples={EXAMPLES}",
        "--generation-deterministic",
        # The coverage phase tries every boundary of every field, every IANA zone included: minutes,
        # not seconds. `make contract` runs it; here the examples and the bounded fuzzing run.
        f"--phases={os.environ.get('CONTRACT_PHASES', 'examples,fuzzing')}",
        f"--auth={write_key}:",
        # The Authorization header is the test's own (--auth): a generated one, valid or not, would be
        # replaced by it, and a request schemathesis "made invalid" there is then valid and stored.
        "--generation-with-security-parameters=false",
        "--workers=1",
        "--no-color",
        f"--report-dir={report_dir}",
        "--report=junit",
        # More of schemathesis's options for a deeper run, e.g. CONTRACT_ARGS="--max-time=600".
        *shlex.split(os.environ.get("CONTRACT_ARGS", "")),
    ]
    # tests/contract_hooks.py keeps generated dates within the one rule JSON Schema cannot state.
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.contract_hooks", "PYTHONPATH": str(BASE_DIR)}
    timeout = int(os.environ.get("CONTRACT_TIMEOUT", "600"))
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=env)


def test_schemathesis_finds_no_server_error_and_no_answer_the_document_does_not_declare(web, write_key, tmp_path):
    result = schemathesis_run(web, write_key, str(tmp_path / "report"))
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout[-20_000:]
