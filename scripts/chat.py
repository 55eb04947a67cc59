"""Send one message through the brain's HTTP API and print the answer as it streams.

    uv run python scripts/chat.py --user alice "What is 2 + 2?"
    uv run python scripts/chat.py --user alice --thread my-thread "And times 3?"

The token comes from ``--token`` or ``TROLLAMA_TOKEN``; in dev mode (DEV_MODE=true)
one is minted from JWT_SECRET_KEY, so no other setup is needed. Exits 0 when the
answer completed, 1 with a one-line reason otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

import httpx
from pydantic import ValidationError

from trollama.brain.auth import mint_token
from trollama.brain.settings import BrainSettings

#: Seconds to wait for the brain to accept the connection.
CONNECT_TIMEOUT_SECONDS = 5.0
#: Seconds of silence in the stream before giving up.
READ_TIMEOUT_SECONDS = 600.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Chat with the Trollama brain.")
    parser.add_argument("message", help="the message to send")
    parser.add_argument("--user", required=True, help="your user name (the token's subject)")
    parser.add_argument("--thread", help="conversation id (omit for a new conversation)")
    parser.add_argument("--model", help="use this model instead of the router's choice")
    parser.add_argument("--url", help="brain base URL (default from BRAIN_HOST/BRAIN_PORT)")
    parser.add_argument("--token", help="bearer JWT (default TROLLAMA_TOKEN)")
    parser.add_argument("--verbose", action="store_true", help="print status frames too")
    return parser.parse_args(argv)


def resolve(args: argparse.Namespace) -> tuple[str, str]:
    """The brain URL and a token, or SystemExit with a reason."""
    token = args.token or os.environ.get("TROLLAMA_TOKEN")
    try:
        settings = BrainSettings(dev_mode=True) if token else BrainSettings()
    except ValidationError as exc:
        reason = exc.errors(include_input=False)[0]["msg"]
        raise SystemExit(f"chat: cannot read settings: {reason}") from None
    url = args.url or f"http://{settings.brain_host}:{settings.brain_port}"
    if token:
        return url, token
    secret = settings.jwt_secret_key.get_secret_value()
    if not secret:
        raise SystemExit("chat: no token: pass --token, set TROLLAMA_TOKEN, or set JWT_SECRET_KEY")
    return url, mint_token(args.user, secret, algorithm=settings.jwt_algorithm)


def render(frame: dict[str, Any], out: TextIO, verbose: bool) -> str | None:
    """Print one frame; returns an error reason for a failing terminal frame."""
    kind = frame.get("type")
    if kind == "delta":
        out.write(frame["text"])
        out.flush()
    elif kind == "status" and frame.get("status") == "retrying":
        out.write(f"\n[{frame.get('message') or 'retrying'}]\n")
    elif kind in ("status", "accepted") and verbose:
        print(f"[{kind}] {json.dumps(frame, ensure_ascii=False)}", file=sys.stderr)
    elif kind == "accepted" and frame.get("notice"):
        print(f"[{frame['notice']}]", file=sys.stderr)
    elif kind == "done":
        out.write("\n")
    elif kind == "error":
        return f"{frame.get('code')}: {frame.get('message')}"
    return None


def stream(url: str, token: str, body: dict[str, Any], verbose: bool) -> int:
    timeout = httpx.Timeout(READ_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.stream(
            "POST", f"{url}/api/chat", json=body, headers=headers, timeout=timeout
        ) as response:
            if response.status_code != httpx.codes.OK:
                response.read()
                return fail(f"HTTP {response.status_code}: {_reason(response)}")
            for line in response.iter_lines():
                if not line.strip():
                    continue
                frame = json.loads(line)
                reason = render(frame, sys.stdout, verbose)
                if reason:
                    return fail(reason)
                if frame.get("type") == "done":
                    return 0
    except httpx.ConnectError:
        return fail(f"the brain at {url} is not reachable (is ./start.sh running?)")
    except httpx.HTTPError as exc:
        return fail(f"connection to the brain failed: {type(exc).__name__}")
    return fail("the stream ended before the answer was complete")


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("message") or body.get("detail") or body)


def fail(reason: str) -> int:
    print(f"\nchat: {reason}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    url, token = resolve(args)
    body: dict[str, Any] = {"content": args.message}
    if args.thread:
        body["conversation_id"] = args.thread
    if args.model:
        body["model_override"] = args.model
    return stream(url.rstrip("/"), token, body, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
