"""``python -m trollama.brain``: run the brain with settings from the environment."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from trollama.brain.app import create_app
from trollama.brain.services import build_services
from trollama.brain.settings import BrainSettings
from trollama.common.logging import configure_logging, register_secret
from trollama.common.protocol import MAX_FRAME_BYTES

#: Exit status when the configuration is refused.
EXIT_CONFIG = 2


def main() -> int:
    try:
        settings = BrainSettings()
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]) for e in exc.errors(include_input=False))
        print(f"trollama-brain: configuration refused: {reasons}", file=sys.stderr)
        return EXIT_CONFIG
    for secret in (settings.relay_shared_secret, settings.jwt_secret_key):
        register_secret(secret.get_secret_value())
    configure_logging("brain", level=settings.log_level, json_lines=settings.log_json)
    if settings.dev_mode:
        logging.getLogger(__name__).warning("DEV_MODE is on: default secrets are accepted")
    app = create_app(build_services(settings))
    uvicorn.run(
        app,
        host=settings.brain_host,
        port=settings.brain_port,
        log_config=None,
        ws_max_size=MAX_FRAME_BYTES,
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
