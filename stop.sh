#!/usr/bin/env bash
# Stops every service that ./start.sh started (found by its pid files). Safe to
# run again: with nothing running it says so and succeeds.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "${REPO_ROOT}"
# shellcheck source=scripts/lib/bootstrap.sh
source "${REPO_ROOT}/scripts/lib/bootstrap.sh"
# shellcheck source=scripts/lib/runtime.sh
source "${REPO_ROOT}/scripts/lib/runtime.sh"

case "${1:-}" in
    "") ;;
    -h | --help)
        printf 'Usage: ./stop.sh\nStops the services ./start.sh started (TERM, then KILL after %ss).\n' \
            "${TROLLAMA_STOP_GRACE:-10}"
        exit 0
        ;;
    *) die "unknown option: $1 (see ./stop.sh --help)" ;;
esac

load_env_file "${ENV_FILE}"
resolve_run_paths

stopped=0
while IFS= read -r name; do
    if stop_service "${name}"; then
        stopped=$((stopped + 1))
    else
        printf '%s was not running (removed its stale pid file)\n' "${name}"
    fi
done < <(recorded_services)

if ((stopped == 0)); then
    printf 'Nothing to stop: no service started by ./start.sh is running.\n'
fi
