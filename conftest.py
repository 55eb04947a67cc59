"""Test-suite wiring: the test kit's fixtures are plugins every test can use."""

import os

pytest_plugins = [
    "trollama.testkit.store_fixtures",
    "trollama.testkit.model_fixtures",
    "trollama.testkit.discord_fixtures",
]

# Services started as child processes by the tests inherit this: they log to
# their own output, not to a log service on the default port (nor into the
# repository's spool). Tests of shipping set it up themselves.
os.environ.setdefault("LOG_SHIPPING", "false")
