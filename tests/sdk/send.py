"""One customer backend using a Python SDK: identify a person, track their signup, flush, exit.

    python tests/sdk/send.py segment|rudderstack HOST WRITE_KEY USER_ID EMAIL

Run as a process of its own by tests/test_sdk_matrix.py, so the SDK's threads, retries and gzip
behave as in a customer's backend. Exits 1 with the SDK's errors if it could not upload.
"""

from __future__ import annotations

import sys
from typing import Any


def client(sdk: str, host: str, write_key: str, errors: list[Any]) -> Any:
    on_error = lambda error, batch: errors.append(error)  # noqa: E731
    if sdk == "segment":
        from segment.analytics import Client as SegmentClient

        # Segment's SDK compresses only when asked; the test asks, so both kinds of body are covered.
        return SegmentClient(write_key, host=host, gzip=True, max_retries=3, on_error=on_error)
    if sdk == "rudderstack":
        from rudderstack.analytics import Client as RudderClient

        # RudderStack's SDK compresses by default.
        return RudderClient(write_key, host=host, max_retries=3, on_error=on_error)
    raise SystemExit(f"unknown SDK {sdk!r}")


def main(sdk: str, host: str, write_key: str, user_id: str, email: str) -> int:
    errors: list[Any] = []
    analytics = client(sdk, host, write_key, errors)
    analytics.identify(user_id, {"email": email, "first_name": "Ann"})
    analytics.track(user_id, "user_signup", {"plan": "free"})
    analytics.shutdown()
    if errors:
        print(f"{sdk} could not upload: {errors}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
