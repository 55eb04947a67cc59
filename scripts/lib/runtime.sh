# shellcheck shell=bash
# Process bookkeeping shared by ./start.sh and ./stop.sh (sourced, not run).
#
# Needs REPO_ROOT set by the caller. Relative paths in the TROLLAMA_* variables
# are relative to the repository root.
#
#   TROLLAMA_ENV_FILE   settings file to create and read   (default: .env)
#   TROLLAMA_RUN_DIR    pid files, one per service         (default: run)
#   TROLLAMA_LOG_DIR    service output, <name>.out         (default: logs)
#   TROLLAMA_STOP_GRACE seconds between TERM and KILL      (default: 10)

: "${REPO_ROOT:?REPO_ROOT must be set before sourcing runtime.sh}"

#: Seconds between two looks at a stopping process.
STOP_POLL_SECONDS=0.2
#: Seconds to wait for the kernel to remove a process after SIGKILL.
KILL_WAIT_SECONDS=2

_abs_path() {
    case "$1" in
        /*) printf '%s' "$1" ;;
        *) printf '%s/%s' "${REPO_ROOT}" "$1" ;;
    esac
}

# shellcheck disable=SC2034  # used by the scripts that source this file
ENV_FILE="$(_abs_path "${TROLLAMA_ENV_FILE:-.env}")"

# Exports every KEY=VALUE of a dotenv file that the environment does not set
# already (the environment wins, as it does in the services' settings).
load_env_file() {
    local file="$1" line key value
    [[ -f "${file}" ]] || return 0
    while IFS= read -r line || [[ -n "${line}" ]]; do
        line="${line%$'\r'}"
        [[ "${line}" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=(.*)$ ]] \
            || continue
        key="${BASH_REMATCH[2]^^}"
        value="$(_dotenv_value "${BASH_REMATCH[3]}")"
        if [[ -z "${!key+set}" ]]; then
            export "${key}=${value}"
        fi
    done <"${file}"
}

# Unquotes a dotenv value; drops a trailing " # comment" from unquoted ones.
_dotenv_value() {
    local value="$1"
    value="${value#"${value%%[![:space:]]*}"}"
    if [[ "${value}" =~ ^\"(.*)\"[[:space:]]*$ || "${value}" =~ ^\'(.*)\'[[:space:]]*$ ]]; then
        printf '%s' "${BASH_REMATCH[1]}"
        return 0
    fi
    value="${value%%[[:space:]]#*}"
    printf '%s' "${value%"${value##*[![:space:]]}"}"
}

# Call after load_env_file: the run and log directories may come from the file.
resolve_run_paths() {
    RUN_DIR="$(_abs_path "${TROLLAMA_RUN_DIR:-run}")"
    # shellcheck disable=SC2034  # used by start.sh
    LOG_DIR="$(_abs_path "${TROLLAMA_LOG_DIR:-logs}")"
    STOP_GRACE_SECONDS="${TROLLAMA_STOP_GRACE:-10}"
}

# The kernel's start time of a process (clock ticks since boot): with the pid it
# identifies one process even after the pid number is reused.
proc_start_time() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    local -a fields
    read -ra fields <<<"${stat##*) }"
    printf '%s' "${fields[19]}"
}

pid_file() {
    printf '%s/%s.pid' "${RUN_DIR}" "$1"
}

# Records a started service: its pid (also its process group) and start time.
write_pid_file() {
    local name="$1" pid="$2" started
    started="$(proc_start_time "${pid}" || printf 'unknown')"
    printf '%s %s\n' "${pid}" "${started}" >"$(pid_file "${name}")"
}

# Prints the pid of a running service started by start.sh; fails otherwise.
running_pid() {
    local file pid started current
    file="$(pid_file "$1")"
    [[ -f "${file}" ]] || return 1
    read -r pid started <"${file}" || return 1
    [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
    if [[ -d "/proc/${pid}" ]]; then
        current="$(proc_start_time "${pid}")" || return 1
        # The same number now belongs to another program: not ours.
        [[ "${current}" == "${started}" ]] || return 1
    fi
    # The group outlives its leader when a child (uv's python) is still running.
    kill -0 -- "-${pid}" 2>/dev/null || return 1
    printf '%s' "${pid}"
}

# Names of the services that have a pid file, in no particular order.
recorded_services() {
    local file
    [[ -d "${RUN_DIR}" ]] || return 0
    for file in "${RUN_DIR}"/*.pid; do
        [[ -e "${file}" ]] || continue
        file="${file##*/}"
        printf '%s\n' "${file%.pid}"
    done
}

_wait_group_gone() {
    local pid="$1" deadline=$((SECONDS + STOP_GRACE_SECONDS))
    while kill -0 -- "-${pid}" 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep "${STOP_POLL_SECONDS}"
    done
}

# Stops one service's whole process group: TERM, then KILL after the grace
# period. Prints what it did; removes the pid file either way.
stop_service() {
    local name="$1" pid
    if ! pid="$(running_pid "${name}")"; then
        rm -f "$(pid_file "${name}")"
        return 1
    fi
    kill -TERM -- "-${pid}" 2>/dev/null || true
    if _wait_group_gone "${pid}"; then
        printf 'stopped %s (pid %s)\n' "${name}" "${pid}"
    else
        kill -KILL -- "-${pid}" 2>/dev/null || true
        STOP_GRACE_SECONDS="${KILL_WAIT_SECONDS}" _wait_group_gone "${pid}" || true
        printf 'killed %s (pid %s): still running %ss after SIGTERM\n' \
            "${name}" "${pid}" "${STOP_GRACE_SECONDS}"
    fi
    rm -f "$(pid_file "${name}")"
}
