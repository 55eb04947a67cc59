#!/usr/bin/env bash
# Runs Trollama's services as local processes; no Docker needed. See --help.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "${REPO_ROOT}"
# shellcheck source=scripts/lib/bootstrap.sh
source "${REPO_ROOT}/scripts/lib/bootstrap.sh"
# shellcheck source=scripts/lib/runtime.sh
source "${REPO_ROOT}/scripts/lib/runtime.sh"

# The services, started in this order. Adding one is one line:
#   name  when  HOST_VAR=default  PORT_VAR=default  health-path  python-command
# when: always | demo (only with --demo) | env:NAME (only when NAME is set)
# The command runs as `uv run <command>`, with {host} and {port} filled in;
# its arguments are split on spaces. Settings come from the environment / .env.
SERVICES=(
    "logging      always LOGSINK_HOST=127.0.0.1             LOGSINK_HEALTH_PORT=9998       /health   python -m trollama.logsink"
    "model-server demo   TROLLAMA_DEMO_MODEL_HOST=127.0.0.1 TROLLAMA_DEMO_MODEL_PORT=11435 /api/tags python -m trollama.testkit.fake_ollama --host {host} --port {port}"
    "brain        always BRAIN_HOST=127.0.0.1               BRAIN_PORT=8001                /health   python -m trollama.brain"
    "relay        env:DISCORD_TOKEN RELAY_HEALTH_HOST=127.0.0.1 RELAY_HEALTH_PORT=9997 /health python -m trollama.relay"
    "monitor      always MONITOR_HOST=127.0.0.1             MONITOR_PORT=8080              /health   python -m trollama.monitor"
)
#: The simulated model server of --demo; the brain is pointed at it.
DEMO_MODEL_SERVICE=model-server
#: The monitoring service; unless MONITOR_TARGETS is set, it watches what this run started.
MONITOR_SERVICE=monitor
#: Secrets written into a new .env (each must appear as an empty `NAME=` line in .env.example).
GENERATED_SECRETS=(RELAY_SHARED_SECRET JWT_SECRET_KEY)
#: Lines of a failing service's log shown on the terminal.
LOG_TAIL_LINES=20
#: Seconds between two health probes while a service starts.
HEALTH_POLL_SECONDS=0.5
#: Seconds one health request may take.
HEALTH_REQUEST_TIMEOUT_SECONDS=2
#: Seconds between two checks that the services still run (foreground mode).
WATCH_POLL_SECONDS=1

DETACH=0
DEMO=0
DOCKER=0
KEEP_RUNNING=0
STARTED=()
STATUS_ROWS=()

usage() {
    cat <<'EOF'
Usage: ./start.sh [--detach] [--demo] [--docker] [--help]

Installs what is missing (uv, the Python environment), creates .env with fresh
secrets when there is none, initialises storage, starts every service in the
background and waits until each answers its health check. Stays in the
foreground until Ctrl-C, then stops them all. Stop a detached run with ./stop.sh.

  --detach   return once every service is healthy, leaving them running
  --demo     start a SIMULATED model server first and point the brain at it
             (no Ollama or GPU needed; answers are canned, not a real model)
  --docker   hand over to: docker compose -f docker-compose.infra.yml
             -f docker-compose.app.yml up   (needs Docker with compose)
  --help     show this text

Ports and settings come from the environment and .env (see .env.example), e.g.
BRAIN_PORT=8011 ./start.sh. Output of each service: logs/<name>.out.
EOF
}

parse_args() {
    local arg
    for arg in "$@"; do
        case "${arg}" in
            --detach) DETACH=1 ;;
            --demo) DEMO=1 ;;
            --docker) DOCKER=1 ;;
            -h | --help) usage && exit 0 ;;
            *) die "unknown option: ${arg} (see ./start.sh --help)" ;;
        esac
    done
    if ((DEMO && DOCKER)); then
        die "--demo runs local processes; it does not combine with --docker"
    fi
}

new_secret() {
    python3 -c 'import secrets; print(secrets.token_urlsafe(48))'
}

# Writes one line of .env.example to the new .env, filling generated secrets.
_env_line() {
    local line="$1" name
    for name in "${GENERATED_SECRETS[@]}"; do
        if [[ "${line}" == "${name}=" ]]; then
            line="${name}=$(new_secret)"
        fi
    done
    printf '%s\n' "${line}"
}

# Creates the settings file from .env.example with fresh secrets; never overwrites.
ensure_env_file() {
    [[ -e "${ENV_FILE}" ]] && return 0
    [[ -f .env.example ]] || die ".env.example is missing; cannot create ${ENV_FILE}"
    mkdir -p "$(dirname "${ENV_FILE}")"
    local tmp line
    tmp="$(mktemp "${ENV_FILE}.new.XXXXXX")"
    while IFS= read -r line || [[ -n "${line}" ]]; do
        _env_line "${line}"
    done <.env.example >"${tmp}"
    chmod 600 "${tmp}"
    # A hard link fails if the file appeared meanwhile: an existing .env always wins.
    if ln "${tmp}" "${ENV_FILE}" 2>/dev/null; then
        say "created ${ENV_FILE} with fresh secrets (${GENERATED_SECRETS[*]})"
    fi
    rm -f "${tmp}"
}

# Fields of one SERVICES line, resolved against the environment.
parse_service() {
    local line="$1" host_spec port_spec
    read -r SVC_NAME SVC_WHEN host_spec port_spec SVC_PATH SVC_CMD <<<"${line}"
    SVC_HOST_VAR="${host_spec%%=*}"
    SVC_PORT_VAR="${port_spec%%=*}"
    # Export the default so the service and this script agree on the address.
    export "${SVC_HOST_VAR}=${!SVC_HOST_VAR:-${host_spec#*=}}"
    export "${SVC_PORT_VAR}=${!SVC_PORT_VAR:-${port_spec#*=}}"
    SVC_HOST="${!SVC_HOST_VAR}"
    SVC_PORT="${!SVC_PORT_VAR}"
    SVC_CMD="${SVC_CMD//\{host\}/${SVC_HOST}}"
    SVC_CMD="${SVC_CMD//\{port\}/${SVC_PORT}}"
    # A service bound to every interface is checked on loopback.
    case "${SVC_HOST}" in
        0.0.0.0 | "::" | "[::]") SVC_URL_HOST=127.0.0.1 ;;
        *:*) SVC_URL_HOST="[${SVC_HOST}]" ;;
        *) SVC_URL_HOST="${SVC_HOST}" ;;
    esac
    SVC_URL="http://${SVC_URL_HOST}:${SVC_PORT}${SVC_PATH}"
}

wanted() {
    local when="$1"
    case "${when}" in
        always) return 0 ;;
        demo) ((DEMO)) ;;
        env:*)
            local var="${when#env:}"
            [[ -n "${!var:-}" ]]
            ;;
        *) die "unknown start condition '${when}' in SERVICES" ;;
    esac
}

# Prints one word for a health URL: healthy | degraded | unhealthy | up | down,
# followed by " simulated" when the answer says the model server is simulated.
health_probe() {
    python3 - "$1" "${HEALTH_REQUEST_TIMEOUT_SECONDS}" <<'PY'
import json, sys, urllib.error, urllib.request

url, timeout = sys.argv[1], float(sys.argv[2])
try:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        code, body = response.status, response.read()
except urllib.error.HTTPError as error:
    code, body = error.code, error.read()
except (OSError, ValueError):
    print("down")
    sys.exit(0)
try:
    data = json.loads(body)
except ValueError:
    data = None
status = data.get("status") if isinstance(data, dict) else None
word = status if status in ("healthy", "degraded", "unhealthy") else None
if word is None:
    word = "up" if 200 <= code < 300 else "unhealthy"
info = data.get("info") if isinstance(data, dict) else None
flags = [data, info] if isinstance(info, dict) else [data]
simulated = any(isinstance(d, dict) and d.get("simulated_model_server") is True for d in flags)
print(word + (" simulated" if simulated else ""))
PY
}

health_ok() {
    case "$1" in
        healthy* | degraded* | up*) return 0 ;;
        *) return 1 ;;
    esac
}

port_in_use() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

show_log_tail() {
    local name="$1" log="${LOG_DIR}/$1.out"
    printf -- '--- last %s lines of %s ---\n' "${LOG_TAIL_LINES}" "${log}" >&2
    tail -n "${LOG_TAIL_LINES}" "${log}" >&2 || true
    printf -- '--- end of %s log ---\n' "${name}" >&2
}

launch_service() {
    local log="${LOG_DIR}/${SVC_NAME}.out" pid
    local -a argv
    read -ra argv <<<"${SVC_CMD}"
    if [[ -f "${log}" ]]; then
        mv -f "${log}" "${log}.prev"
    fi
    # setsid: the service leads its own process group, so stopping it also
    # stops the python process that `uv run` starts; fd 9 is the start lock.
    setsid "${UV}" run --no-sync "${argv[@]}" >"${log}" 2>&1 </dev/null 9>&- &
    pid=$!
    write_pid_file "${SVC_NAME}" "${pid}"
    STARTED+=("${SVC_NAME}")
    say "started ${SVC_NAME} (pid ${pid}), waiting for ${SVC_URL}"
}

# Waits (bounded) until the service answers healthy; on failure shows its log.
await_health() {
    local deadline=$((SECONDS + HEALTH_TIMEOUT_SECONDS)) state="down"
    while ((SECONDS < deadline)); do
        if ! running_pid "${SVC_NAME}" >/dev/null; then
            show_log_tail "${SVC_NAME}"
            die "${SVC_NAME} exited during start-up (log: ${LOG_DIR}/${SVC_NAME}.out)"
        fi
        state="$(health_probe "${SVC_URL}")"
        if health_ok "${state}"; then
            SVC_STATE="${state}"
            return 0
        fi
        sleep "${HEALTH_POLL_SECONDS}"
    done
    show_log_tail "${SVC_NAME}"
    die "${SVC_NAME} did not become healthy within ${HEALTH_TIMEOUT_SECONDS}s (last answer: ${state}; ${SVC_URL})"
}

add_status_row() {
    local note=""
    if [[ "${SVC_NAME}" == "${DEMO_MODEL_SERVICE}" ]]; then
        note="SIMULATED model server (demo)"
    elif [[ "${SVC_STATE}" == *simulated* ]]; then
        note="using the SIMULATED model server"
    elif [[ "${SVC_STATE}" == degraded* ]]; then
        note="degraded: open the health URL for details"
    fi
    STATUS_ROWS+=("$(printf '%-14s %-8s %-38s %-10s %s' "${SVC_NAME}" \
        "$(running_pid "${SVC_NAME}")" "${SVC_URL}" "${SVC_STATE%% *}" "${note}")")
}

print_status() {
    printf '\n%-14s %-8s %-38s %-10s %s\n' SERVICE PID "HEALTH URL" HEALTH NOTE
    printf '%s\n' "${STATUS_ROWS[@]}"
    printf '\nLogs: %s/<service>.out   Settings: %s\n' "${LOG_DIR}" "${ENV_FILE}"
}

# Fails before anything starts when another program holds a service's port
# (its health check would otherwise answer for a service that never started).
check_ports() {
    local line
    for line in "${SERVICES[@]}"; do
        parse_service "${line}"
        wanted "${SVC_WHEN}" || continue
        if port_in_use "${SVC_URL_HOST//[\[\]]/}" "${SVC_PORT}"; then
            die "port ${SVC_PORT} (${SVC_PORT_VAR}, for ${SVC_NAME}) is already in use by another program; stop it or set ${SVC_PORT_VAR} in ${ENV_FILE}"
        fi
    done
}

start_services() {
    local line targets=()
    for line in "${SERVICES[@]}"; do
        parse_service "${line}"
        if ! wanted "${SVC_WHEN}"; then
            if [[ "${SVC_WHEN}" == env:* ]]; then
                say "${SVC_NAME}: skipped (set ${SVC_WHEN#env:} in ${ENV_FILE} to start it)"
            fi
            continue
        fi
        if [[ "${SVC_NAME}" == "${DEMO_MODEL_SERVICE}" ]]; then
            # The brain talks to the simulated server, and says so in /health.
            export OLLAMA_HOST="http://${SVC_URL_HOST}:${SVC_PORT}"
            export MODEL_SERVER_SIMULATED=true
            say "demo mode: starting a SIMULATED model server (canned answers, no real model)"
        fi
        if [[ "${SVC_NAME}" == "${MONITOR_SERVICE}" && -z "${MONITOR_TARGETS:-}" ]]; then
            MONITOR_TARGETS="$(IFS=,; echo "${targets[*]}")"
            export MONITOR_TARGETS
        fi
        launch_service
        await_health
        add_status_row
        if [[ "${SVC_NAME}" != "${DEMO_MODEL_SERVICE}" && "${SVC_NAME}" != "${MONITOR_SERVICE}" ]]; then
            targets+=("${SVC_NAME}=http://${SVC_URL_HOST}:${SVC_PORT}${SVC_PATH}")
        fi
    done
}

# Stops what this run started (in reverse order) unless it is meant to keep running.
cleanup() {
    local status=$? i
    set +e
    if ((!KEEP_RUNNING && ${#STARTED[@]} > 0)); then
        say "stopping the services this run started"
        for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
            stop_service "${STARTED[i]}"
        done
    fi
    exit "${status}"
}

# Lists "name (pid N)" for every recorded service that still runs.
running_services() {
    local name pid
    while IFS= read -r name; do
        if pid="$(running_pid "${name}")"; then
            printf '%s (pid %s)\n' "${name}" "${pid}"
        fi
    done < <(recorded_services)
}

_exit_if_running() {
    local running
    running="$(running_services)"
    if [[ -n "${running}" ]]; then
        printf 'Trollama is already running: %s\n' "${running//$'\n'/, }" >&2
        printf 'Stop it with ./stop.sh before starting again.\n' >&2
        exit 1
    fi
}

# One start at a time: refuses while services run or another start is under way.
refuse_if_running() {
    local name
    _exit_if_running
    exec 9>"${RUN_DIR}/start.lock"
    flock -n 9 || die "another ./start.sh is starting right now; wait for it, or run ./stop.sh"
    _exit_if_running
    while IFS= read -r name; do
        rm -f "$(pid_file "${name}")"
    done < <(recorded_services)
}

hand_over_to_docker() {
    local -a files=(-f docker-compose.infra.yml -f docker-compose.app.yml) extra=()
    if ! command -v docker >/dev/null 2>&1 || ! docker compose version >/dev/null 2>&1; then
        die "--docker needs Docker with the compose plugin, which is not installed here. Run ./start.sh without --docker to start the services as local processes."
    fi
    docker info >/dev/null 2>&1 \
        || die "--docker: the Docker engine is not reachable (is the daemon running?). Run ./start.sh without --docker to use local processes."
    [[ -f docker-compose.infra.yml && -f docker-compose.app.yml ]] \
        || die "--docker: docker-compose.infra.yml or docker-compose.app.yml is missing"
    ((DETACH)) && extra=(--detach)
    say "handing over to docker compose"
    exec docker compose "${files[@]}" --env-file "${ENV_FILE}" up "${extra[@]}"
}

watch_services() {
    local name
    printf '\nRunning. Press Ctrl-C to stop every service.\n'
    while true; do
        for name in "${STARTED[@]}"; do
            if ! running_pid "${name}" >/dev/null; then
                show_log_tail "${name}"
                die "${name} stopped unexpectedly (log: ${LOG_DIR}/${name}.out)"
            fi
        done
        sleep "${WATCH_POLL_SECONDS}"
    done
}

main() {
    parse_args "$@"
    ensure_env_file
    load_env_file "${ENV_FILE}"
    ((DOCKER)) && hand_over_to_docker
    resolve_run_paths
    HEALTH_TIMEOUT_SECONDS="${TROLLAMA_HEALTH_TIMEOUT:-60}"
    mkdir -p "${RUN_DIR}" "${LOG_DIR}"
    refuse_if_running
    ensure_uv
    # --inexact: never remove packages a developer added to .venv by hand.
    uv_sync --inexact
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    check_ports
    "${UV}" run --no-sync python scripts/init_storage.py \
        || die "storage initialisation failed (see the message above)"
    start_services
    print_status
    if ((DETACH)); then
        KEEP_RUNNING=1
        printf '\nDetached. Stop with ./stop.sh\n'
        return 0
    fi
    watch_services
}

main "$@"
