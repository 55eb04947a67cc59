"""Print a bearer JWT for a user, signed with JWT_SECRET_KEY (development helper).

    uv run python scripts/mint_token.py alice [--admin] [--hours 8]

The auth service issues real tokens; this exists so the brain's API can be
used before (and without) it.
"""

from __future__ import annotations

import argparse
import sys

from trollama.brain.auth import mint_token
from trollama.brain.settings import BrainSettings
from trollama.common.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("user")
    parser.add_argument("--admin", action="store_true", help="grant admin rights")
    parser.add_argument("--hours", type=float, default=8.0, help="lifetime (default 8)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    settings = load_settings(BrainSettings, "mint_token")
    if settings is None:
        return 2
    token = mint_token(
        args.user,
        settings.jwt_secret_key.get_secret_value(),
        algorithm=settings.jwt_algorithm,
        admin=args.admin,
        ttl_seconds=int(args.hours * 3600),
    )
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
