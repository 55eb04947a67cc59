# shellcheck shell=bash
# Shared set-up steps for ./start.sh and ./scripts/run-tests.sh (sourced, not run).
#
# Needs REPO_ROOT set by the caller. Provides:
#   say MESSAGE...        print a progress line on stderr
#   die MESSAGE...        print an error and exit 1
#   apt_install PKG...    install Debian packages (runs `apt-get update` once)
#   ensure_uv             set UV to a working uv binary, installing it if missing
#   uv_sync [ARGS...]     `uv sync --locked` quietly, with a clear error on failure

: "${REPO_ROOT:?REPO_ROOT must be set before sourcing bootstrap.sh}"

#: Project-local virtual environment that holds uv when it is not on PATH.
UV_TOOL_VENV="${REPO_ROOT}/.tools/uv"
#: Set once `apt-get update` ran in this process.
APT_UPDATED=0
UV=""

say() {
    printf '==> %s\n' "$*" >&2
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Prints the command prefix that gives root (empty when already root).
_root_prefix() {
    if [[ "$(id -u)" -eq 0 ]]; then
        return 0
    fi
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        printf 'sudo -n'
        return 0
    fi
    return 1
}

apt_install() {
    local prefix
    if ! prefix="$(_root_prefix)"; then
        die "root is needed to install: $*; run 'sudo apt-get install -y $*' and try again"
    fi
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: $*"
    local -a run=()
    if [[ -n "${prefix}" ]]; then
        read -ra run <<<"${prefix}"
    fi
    if [[ "${APT_UPDATED}" -eq 0 ]]; then
        say "apt-get update"
        "${run[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
            || die "apt-get update failed"
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    "${run[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
        || die "apt-get install $* failed"
}

# Creates .tools/uv (a venv with uv from PyPI); installs python3-venv if needed.
_install_uv_venv() {
    command -v python3 >/dev/null 2>&1 || apt_install python3
    say "installing uv from PyPI into ${UV_TOOL_VENV#"${REPO_ROOT}/"}"
    mkdir -p "$(dirname "${UV_TOOL_VENV}")"
    if ! python3 -m venv "${UV_TOOL_VENV}" >/dev/null 2>&1; then
        # Debian ships venv without ensurepip until python3-venv is installed.
        rm -rf "${UV_TOOL_VENV}"
        apt_install python3-venv
        python3 -m venv "${UV_TOOL_VENV}" || die "python3 -m venv failed"
    fi
    "${UV_TOOL_VENV}/bin/python" -m pip install --quiet --disable-pip-version-check uv \
        || die "could not install uv from PyPI (is https://pypi.org reachable?)"
}

ensure_uv() {
    if command -v uv >/dev/null 2>&1 && uv --version >/dev/null 2>&1; then
        UV="$(command -v uv)"
    else
        if [[ ! -x "${UV_TOOL_VENV}/bin/uv" ]]; then
            _install_uv_venv
        fi
        UV="${UV_TOOL_VENV}/bin/uv"
    fi
    export UV
}

uv_sync() {
    if ! "${UV}" sync --locked --quiet "$@"; then
        die "'uv sync --locked' failed: uv.lock must match pyproject.toml (run 'uv lock') and PyPI must be reachable"
    fi
}
