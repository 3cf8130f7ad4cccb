"""Stops with real processes: signals and a closed output end every subcommand after whole
lines only, with the documented exit code, no traceback, and a summary that counts what was
really written.

Each trial feeds the filter at an uneven pace, reads its output at an uneven pace (so that
some signals land while it waits for input, some while it maps, some while a write is
blocked on a full pipe) and stops it at a random moment. J1FILTER_STOP_TRIALS sets the
trials per signal (default 4; the sweep used while writing this: 40).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .conftest import REPO, SAMPLES

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

TRIALS = int(os.environ.get("J1FILTER_STOP_TRIALS", "4"))
SAMPLE_LINES = SAMPLES.read_bytes().splitlines(keepends=True)
SIGNALS = {"SIGTERM": 143, "SIGINT": 130, "SIGHUP": 129}


def _feed(stdin, rng: random.Random, stop: threading.Event) -> None:
    """Sample entities in bursts with pauses, until the filter goes away."""
    try:
        while not stop.is_set():
            stdin.write(b"".join(rng.choice(SAMPLE_LINES) for _ in range(rng.choice((1, 50, 400)))))
            stdin.flush()
            time.sleep(rng.choice((0, 0, 0.002, 0.02)))
    except (BrokenPipeError, ValueError, OSError):
        pass


def _drain(stdout, rng: random.Random, slow: bool, into: list[bytes]) -> None:
    while True:
        chunk = stdout.read1(4096 if slow else 1 << 16)
        if not chunk:
            return
        into.append(chunk)
        if slow:
            time.sleep(rng.choice((0, 0.001, 0.005)))


def _summary_documents(stderr: str) -> int:
    match = re.search(r"lines? in, ([\d,]+) documents? out", stderr)
    assert match, f"no summary in stderr: {stderr!r}"
    return int(match[1].replace(",", ""))


def _stop_trial(signame: str, seed: int, extra: list[str]) -> None:
    rng = random.Random(seed)
    proc = subprocess.Popen(
        [sys.executable, "-m", "j1filter", *extra],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    received: list[bytes] = []
    stop_feeding = threading.Event()
    feeder = threading.Thread(target=_feed, args=(proc.stdin, rng, stop_feeding), daemon=True)
    reader = threading.Thread(target=_drain, args=(proc.stdout, rng, seed % 2 == 1, received), daemon=True)
    feeder.start()
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:  # running, handlers installed
            time.sleep(0.005)
        assert received, "no output within 30 s"
        time.sleep(rng.uniform(0, 0.3))
        proc.send_signal(getattr(signal, signame))
        reader.join(30)
        rc = proc.wait(30)
    finally:
        stop_feeding.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read().decode()
    output = b"".join(received)
    assert rc == SIGNALS[signame], f"exit code {rc}; stderr: {stderr}"
    assert "Traceback" not in stderr, stderr
    assert output.endswith(b"\n"), f"partial last line: {output[-200:]!r}"
    lines = output.splitlines()
    for number, line in enumerate(lines, 1):
        assert json.loads(line)["ecs"]["version"] == "9.2.0", f"output line {number} is not a document"
    assert _summary_documents(stderr) == len(lines), stderr
    assert f"stopped by {signame}" in stderr


@pytest.mark.parametrize("signame", list(SIGNALS))
@pytest.mark.parametrize("trial", range(TRIALS))
def test_a_stop_signal_ends_the_filter_after_whole_lines(signame, trial):
    extra = [["--workers", "2"], [], ["--line-buffered"]][trial % 3]
    _stop_trial(signame, seed=trial * 7919 + sum(map(ord, signame)), extra=extra)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_errors_file_keeps_whole_lines_on_a_stop(tmp_path, workers):
    """The copy of the error documents is cut at the same place: whole lines only."""
    errors = tmp_path / "errors.ndjson"
    global SAMPLE_LINES
    saved, SAMPLE_LINES = SAMPLE_LINES, [b"not json\n", *SAMPLE_LINES]
    try:
        _stop_trial("SIGTERM", seed=5, extra=["--errors-file", str(errors), "--workers", workers])
    finally:
        SAMPLE_LINES = saved
    copied = errors.read_bytes()
    assert copied and copied.endswith(b"\n")
    assert all(json.loads(line)["event"]["kind"] == "pipeline_error" for line in copied.splitlines())


@pytest.fixture(scope="module")
def big_input(tmp_path_factory):
    path = tmp_path_factory.mktemp("stops") / "big.ndjson"
    path.write_bytes(SAMPLES.read_bytes() * 800)  # 19,200 entities
    return path


def _pipeline(command: str, big_input) -> subprocess.CompletedProcess:
    """A shell pipeline as a user types it, with pipefail: its exit code is the worst."""
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command}"],
        cwd=REPO,
        capture_output=True,
        timeout=120,
        env=dict(os.environ, J1=f"{sys.executable} -m j1filter", BIG=str(big_input), SAMPLES=str(SAMPLES)),
    )


@pytest.mark.parametrize(
    "command",
    [
        "$J1 < $BIG | head -1",
        "$J1 --workers 2 < $BIG | head -1",
        "$J1 demo --json | head -1",
        "$J1 demo | head -1",
        "$J1 fields | head -1",
        "$J1 fields --transforms | head -1",
        "$J1 check | head -0",
        "$J1 explain --all $SAMPLES | head -1",
        "$J1 explain --json $SAMPLES | head -1",
    ],
)
def test_a_reader_that_closes_early_is_not_a_failure(command, big_input):
    proc = _pipeline(command, big_input)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr and b"Error" not in proc.stderr, proc.stderr.decode()
    assert proc.stdout.count(b"\n") == (0 if "head -0" in command else 1)


def test_the_summary_counts_what_the_reader_took(big_input):
    """`| head -1`: the summary does not claim a whole batch went out."""
    proc = _pipeline("$J1 < $BIG | head -1", big_input)
    written = _summary_documents(proc.stderr.decode())
    assert "output closed early" in proc.stderr.decode()
    assert 1 <= written < 512  # what the pipe took before head closed it, not the batch


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
@pytest.mark.parametrize("trial", range(3))
def test_a_stop_ends_the_demo_cleanly(trial):
    """SIGTERM at some moment of the demo (starting the simulator, collecting, mapping):
    exit 143, or 0 if it had finished; whole lines, no traceback, no collector left behind."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "j1filter", "demo", "--json"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    banner = proc.stderr.readline()  # the simulator is up and the collector started
    assert b"simulator at" in banner
    time.sleep(random.Random(trial).uniform(0, 0.4))
    proc.send_signal(signal.SIGTERM)
    output, stderr = proc.communicate(timeout=60)
    assert proc.returncode in (0, 143), stderr.decode()
    assert b"Traceback" not in stderr, stderr.decode()
    assert output == b"" or output.endswith(b"\n")
    assert all(json.loads(line)["ecs"] for line in output.splitlines())
    url = re.search(rb"http://\S+/graphql", banner)[0]
    assert not _processes_with(url), "the collector outlived the demo"


def _processes_with(text: bytes) -> list[str]:
    """Live processes whose command line contains ``text`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                if text in cmdline.read():
                    found.append(entry)
        except OSError:  # not a process, or gone meanwhile
            continue
    return found


def test_workers_stopped_while_waiting_for_input_exit_with_the_signals_code():
    """The reader thread waits in a read when SIGTERM comes: the process still ends 143 (a
    buffered stdin's lock held there made the interpreter abort with SIGABRT, 5 runs of 5)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "j1filter", "--workers", "2", "-q"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        proc.stdin.write((REPO / "j1filter" / "samples" / "entities.ndjson").read_bytes())
        proc.stdin.flush()  # stdin stays open: the reader waits for more
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
    finally:
        proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert rc == 143, f"exit code {rc}; stderr: {stderr}"
    assert "Fatal Python error" not in stderr


def test_a_killed_worker_ends_the_run_saying_where_to_resume(tmp_path):
    """SIGKILL to one worker mid-run: exit 1, whole lines only, and stderr names the first
    line not written; every line before it was (in order), so `tail -n +N` resumes there."""
    lines = [json.loads(line) for line in SAMPLE_LINES]
    corpus = tmp_path / "corpus.ndjson"
    with corpus.open("wb") as out:
        for n in range(30_000):
            entity = lines[n % len(lines)]
            entity["id"] = f"line-{n + 1}"
            out.write(json.dumps(entity).encode() + b"\n")
    with corpus.open("rb") as stdin:
        proc = subprocess.Popen(
            [sys.executable, "-m", "j1filter", "--workers", "2"],
            cwd=REPO,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        received = [proc.stdout.read1(1 << 16)]  # it has started mapping
        workers = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        os.kill(int(workers[0]), signal.SIGKILL)
        rest, stderr = proc.communicate(timeout=120)
    output = b"".join([*received, rest])
    assert proc.returncode == 1, stderr
    match = re.search(
        rb"worker process 1 was killed by SIGKILL; every line before line (\d+) was written", stderr
    )
    assert match, stderr
    resume = int(match[1])
    assert 1 < resume < 30_000 and output.endswith(b"\n")
    ids = [json.loads(line)["event"]["id"] for line in output.splitlines()]
    assert ids == [f"line-{n}" for n in range(1, resume)]


def test_a_killed_parent_leaves_no_worker_behind(tmp_path):
    """SIGKILL to the parent mid-run: its workers find their input closed and end."""
    corpus = tmp_path / "corpus.ndjson"
    corpus.write_bytes(b"".join(SAMPLE_LINES) * 3000)
    with corpus.open("rb") as stdin:
        proc = subprocess.Popen(
            [sys.executable, "-m", "j1filter", "--workers", "2", "-q"],
            cwd=REPO,
            stdin=stdin,
            stdout=subprocess.PIPE,
        )
        proc.stdout.read1(1 << 16)  # it has started mapping
        workers = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        proc.kill()
        proc.communicate(timeout=30)
    assert len(workers) == 2
    deadline = time.monotonic() + 20
    while (alive := [pid for pid in workers if _running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"workers {alive} outlived their parent"


def _running(pid: str) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status
