"""``python -m trollama.brain``: run the brain with settings from the environment."""

from __future__ import annotations

import logging
import sys

import uvicorn

from trollama.brain.app import create_app
from trollama.brain.services import build_services
from trollama.brain.settings import BrainSettings
from trollama.common.logging import configure_logging, register_secret
from trollama.common.protocol import MAX_FRAME_BYTES
from trollama.common.settings import load_settings

#: Exit status when the configuration is refused.
EXIT_CONFIG = 2


def main() -> int:
    settings = load_settings(BrainSettings, "trollama-brain")
    if settings is None:
        return EXIT_CONFIG
    for secret in (settings.relay_shared_secret, settings.jwt_secret_key):
        register_secret(secret.get_secret_value())
    shipping = configure_logging(
        "brain", level=settings.log_level, json_lines=settings.log_json, shipping=settings
    )
    if settings.dev_mode:
        logging.getLogger(__name__).warning("DEV_MODE is on: default secrets are accepted")
    services = build_services(settings)
    services.log_shipping = shipping
    app = create_app(services)
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
