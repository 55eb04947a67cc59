"""Test-suite wiring: the test kit's fixtures are plugins every test can use."""

pytest_plugins = [
    "trollama.testkit.store_fixtures",
    "trollama.testkit.model_fixtures",
    "trollama.testkit.discord_fixtures",
]
