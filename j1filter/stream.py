"""Stream lines of raw J1 JSON through a :class:`Mapper`: bytes in, ECS JSON lines out.

What one line gives is the line protocol's business (:mod:`j1filter.protocol`); this module
reads lines in blocks, writes the documents in batches and counts. No line is lost and the
stream never stops: the protocol's last-resort guard turns any exception into an error
document for its line. Blank lines are skipped (and counted). Output is batched by count and
by bytes, so memory follows the largest document, not the batch. A stop signal or a closed
output ends the run after whole lines only.
"""

from __future__ import annotations

import fcntl
import io
import mmap
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import stat
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from .io.output import LineWriter, Progress, plural
from .io.stops import GUARD, STOP_SIGNALS, StopGuard, Stopped
from .protocol import PRETTY_PRINTED_HINT, Encoded, encode_line, looks_pretty_printed, too_long
from .runtime.mapper import Mapper

#: Lines longer than this are not parsed; their first bytes go out in an error document.
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
#: Output is written once this many documents or bytes are pending (whichever comes first).
DEFAULT_BATCH_SIZE = 512
DEFAULT_BATCH_BYTES = 1024 * 1024
#: Input is read in blocks of at most this many bytes (what is available: pipes are not waited on).
READ_BLOCK_BYTES = 1 << 16
_BLANK = frozenset(b" \t\n\r\x0b\x0c")  # what bytes.strip() removes


@dataclass
class Stats:
    lines: int = 0
    blank_lines: int = 0
    documents: int = 0  # written whole to the output, not merely mapped
    errors: Counter[str] = field(default_factory=Counter)  # error kind -> documents written
    output_closed: bool = False
    stopped_by: int | None = None  # the stop signal that ended the run early
    looks_pretty_printed: bool = False  # a line was a lone "{" or "[" (e.g. `jq .` output)

    def summary(self) -> str:
        text = f"j1filter: {plural(self.lines, 'line')} in, {plural(self.documents, 'document')} out"
        if self.blank_lines:
            text += f", {plural(self.blank_lines, 'blank line')} skipped"
        total = sum(self.errors.values())
        if total:
            kinds = ", ".join(f"{kind}: {n:,}" for kind, n in sorted(self.errors.items()))
            text += f", {total:,} with errors ({kinds})"
        else:
            text += ", no errors"
        if self.output_closed:
            text += ", output closed early"
        if self.stopped_by is not None:
            text += f", stopped by {signal.Signals(self.stopped_by).name}"
        if self.looks_pretty_printed:
            text += "\n" + PRETTY_PRINTED_HINT
        return text


# --- the stream --------------------------------------------------------------------------------


def read_lines(
    source: BinaryIO,
    max_line_bytes: int,
    block_bytes: int = READ_BLOCK_BYTES,
    on_block: Callable[[], None] = lambda: None,
) -> Iterator[tuple[bytes, int]]:
    """Lines without their line ending, with their full length in bytes, read in blocks (what
    is available, up to ``block_bytes``: a pipe's lines come out as soon as they arrive;
    ``on_block`` is called after each). A line longer than ``max_line_bytes`` is cut there
    and the rest read past, so memory stays bounded."""
    read = getattr(source, "read1", None) or source.read
    head: list[bytes] = []  # the first bytes (at most max_line_bytes + 1) of a line across blocks
    kept = size = 0  # bytes in head; bytes of that line read so far
    while chunk := read(block_bytes):
        on_block()
        start, length = 0, len(chunk)
        while start < length:
            end = chunk.find(b"\n", start)
            stop = length if end < 0 else end + 1
            if end >= 0 and not size:  # the usual case: a whole line in the block
                if stop - start > max_line_bytes:
                    yield chunk[start : start + max_line_bytes], stop - start
                else:
                    yield chunk[start:end].rstrip(b"\r\n"), stop - start
                start = stop
                continue
            if kept <= max_line_bytes:
                piece = chunk[start : min(stop, start + max_line_bytes + 1 - kept)]
                head.append(piece)
                kept += len(piece)
            size += stop - start
            start = stop
            if end >= 0:
                yield _line_end(b"".join(head), size, max_line_bytes), size
                head, kept, size = [], 0, 0
        del chunk  # not kept alive while the last line of the block is mapped
    if size:
        yield _line_end(b"".join(head), size, max_line_bytes), size


def _line_end(line: bytes, size: int, max_line_bytes: int) -> bytes:
    return line[:max_line_bytes] if size > max_line_bytes else line.rstrip(b"\r\n")


def run(
    source: BinaryIO,
    sink: BinaryIO,
    mapper: Mapper,
    *,
    line_buffered: bool = False,
    errors_sink: BinaryIO | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    name: str = "line",
    guard: StopGuard = GUARD,
    progress: Progress | None = None,
    workers: int = 1,
) -> Stats:
    """Map every line of ``source`` to ``sink``; return what happened. Error documents go
    to ``sink`` too (and, as a copy, to ``errors_sink``). Output is written once
    ``batch_size`` documents or ``batch_bytes`` bytes are pending. A stop signal (see
    :mod:`.stops`) or a closed ``sink`` ends the run after whole lines only; the stats
    count the documents that were really written. With ``workers`` above 1 (and not
    ``line_buffered``), that many forked processes map the lines; the output is the same."""
    stats = Stats()
    out = LineWriter(sink, guard)
    errors_out = LineWriter(errors_sink, guard) if errors_sink is not None else None
    pending = Pending()
    try:
        if workers > 1 and not line_buffered:
            _run_workers(
                source,
                out,
                errors_out,
                mapper,
                stats,
                workers=workers,
                max_line_bytes=max_line_bytes,
                name=name,
                progress=progress,
            )
            return stats
        lines = read_lines(source, max_line_bytes, on_block=mapper.hold_clock)  # the time each block was seen
        for line_no, (line, size) in enumerate(lines, 1):
            stats.lines += 1
            encoded = handle_line(mapper, line, size, max_line_bytes, f"{name} {line_no}")
            if encoded is None:
                stats.blank_lines += 1
                continue
            if not stats.looks_pretty_printed and pretty_printed(line, encoded):
                stats.looks_pretty_printed = True
            pending.add(encoded)
            del line, encoded  # a huge line's bytes are not needed while the batch is written
            if line_buffered or len(pending.documents) >= batch_size or pending.size >= batch_bytes:
                _flush(out, errors_out, pending, stats)
            if progress is not None and progress.due():
                progress.show(stats.documents, sum(stats.errors.values()))
        _flush(out, errors_out, pending, stats)
    except Stopped as stop:  # the document being mapped is dropped; the finished ones go out whole
        stats.stopped_by = stop.signum
        _flush_quietly(out, errors_out, pending, stats)
    except BrokenPipeError:
        stats.output_closed = True
    finally:
        mapper.release_clock()
    return stats


def handle_line(
    mapper: Mapper, line: bytes, size: int, max_line_bytes: int, where: str
) -> list[Encoded] | None:
    """The output lines of one input line as read (``size``: its length with the line ending);
    None for a blank line."""
    if size > max_line_bytes:
        return [too_long(mapper, line, size, max_line_bytes, where)]
    if not line or (line[0] in _BLANK and not line.strip()):  # no copy of a usual line
        return None
    return encode_line(mapper, line, where)


def pretty_printed(line: bytes, encoded: list[Encoded]) -> bool:
    """A lone ``{`` or ``[`` that is invalid JSON: the input is pretty-printed (its error
    document says so, see :func:`.protocol.map_line`)."""
    return len(encoded) == 1 and encoded[0][1] == "invalid_json" and looks_pretty_printed(line)


class Pending:
    """The output lines mapped and not yet written, and which of them are error documents."""

    def __init__(self) -> None:
        self.documents: list[bytes] = []
        self.failed: list[tuple[int, str, bytes]] = []  # index among the documents, kind, line
        self.size = 0  # bytes

    def add(self, encoded: list[Encoded]) -> None:
        for document, error_kind in encoded:
            if error_kind:
                self.failed.append((len(self.documents), error_kind, document))
            self.documents.append(document)
            self.size += len(document)

    def take(self) -> tuple[bytes, int, list[tuple[int, str, bytes]]]:
        """The pending lines as one block ending in a newline, their number and the error
        documents among them; nothing is pending after."""
        documents, failed = self.documents, self.failed
        self.documents, self.failed, self.size = [], [], 0
        documents.append(b"")  # the block ends in a newline
        return b"\n".join(documents), len(documents) - 1, failed


def _flush_quietly(out: LineWriter, errors_out: LineWriter | None, pending: Pending, stats: Stats) -> None:
    try:
        _flush(out, errors_out, pending, stats)
    except BrokenPipeError:
        stats.output_closed = True


def _flush(out: LineWriter, errors_out: LineWriter | None, pending: Pending, stats: Stats) -> None:
    """Write the pending documents as one block (see :func:`_write`)."""
    block, count, failed = pending.take()  # before writing: a stop right after must not repeat it
    _write(out, errors_out, block, count, failed, stats)


def _write(
    out: LineWriter,
    errors_out: LineWriter | None,
    block: bytes | memoryview,
    count: int,
    failed: list[tuple[int, str, bytes]],
    stats: Stats,
) -> None:
    """Write ``block``, ``count`` documents as whole lines; count those written whole, and copy
    the error documents among them (``failed``: index in the block, kind, line) to the errors
    file."""
    if not count:
        return
    before = out.lines
    with out.guard.writing():
        try:
            out.write_block(block, count)
        finally:
            written = out.lines - before
            stats.documents = out.lines
            errors = [(kind, document) for index, kind, document in failed if index < written]
            stats.errors.update(kind for kind, _ in errors)
            if errors_out is not None and errors:
                errors_out.write([document for _, document in errors])


# --- worker processes ------------------------------------------------------------------------------

#: Input bytes read at a time for the workers (a job is the whole lines among them), and jobs
#: in flight per worker (so that one can run ahead while another is held up).
JOB_BYTES = 1 << 18
JOBS_PER_WORKER = 4
#: Shared memory per job in flight (see SharedSlots): room for its input, with the start of a
#: line carried over from the block before, and for its documents (about three times the
#: input for usual entities). A job or a result that does not fit goes through the pipe.
SLOT_INPUT_BYTES = 2 * JOB_BYTES
SLOT_OUTPUT_BYTES = 8 * JOB_BYTES
#: What a pipe from a worker may hold: Linux's default limit for a process (fs/pipe-max-size).
RESULT_PIPE_BYTES = 1 << 20
#: A job: the number of its first line, the input (whole lines, or the first bytes of one line
#: longer than the limit) and that long line's full size (0 for whole lines).
Job = tuple[int, bytes, int]
#: What a job gives: (lines, blank lines, whether a line showed pretty-printed JSON, how many
#: documents, the error documents among them as (index, kind, line)).
JobHead = tuple[int, int, bool, int, list[tuple[int, str, bytes]]]
#: A job's result: its head, and its documents as one block of lines.
JobResult = tuple[JobHead, bytes]
#: A job's result as the parent takes it back: its slot, its head and its documents (in the
#: slot or, when they did not fit there, as they came through the pipe).
Returned = tuple[int, JobHead, bytes | memoryview]


class SharedSlots:
    """Shared memory for the jobs in flight, mapped before the workers are forked. A job's
    input and then its documents wait in its slot, and only a small message about them
    crosses a pipe. Through pipes, each block was copied into the kernel and out again, and
    the parent took fresh pages for every result (about 190,000 page faults per 100,000
    entities): more CPU than the rest of the parent's work. A slot is taken for a job and
    given back once the job's documents are written."""

    def __init__(self, count: int, input_bytes: int, output_bytes: int):
        size = input_bytes + output_bytes
        view = memoryview(mmap.mmap(-1, count * size))  # anonymous and shared: the children see it
        self.inputs = [view[n * size : n * size + input_bytes] for n in range(count)]
        self.outputs = [view[n * size + input_bytes : (n + 1) * size] for n in range(count)]


def _send(connection: Any, room: memoryview, message: tuple[Any, ...], data: bytes) -> None:
    """``message`` (a small tuple, pickled) and ``data``: in ``room`` when it fits, else
    through the pipe as it is (not copied into a pickle)."""
    if len(data) <= len(room):
        room[: len(data)] = data
        connection.send((*message, len(data)))
    else:
        connection.send((*message, -1))
        connection.send_bytes(data)


def _receive(connection: Any, rooms: list[memoryview]) -> tuple[Any, ...]:
    """What :func:`_send` sent, with the message's first item the slot of ``rooms`` it used:
    the message and the data (a view of the slot, valid until the slot is taken again)."""
    *message, length = connection.recv()
    data = rooms[message[0]][:length] if length >= 0 else connection.recv_bytes()
    return (*message, data)


def _run_workers(
    source: BinaryIO,
    out: LineWriter,
    errors_out: LineWriter | None,
    mapper: Mapper,
    stats: Stats,
    *,
    workers: int,
    max_line_bytes: int,
    name: str,
    progress: Progress | None,
) -> None:
    """:func:`run`'s loop with the mapping done by ``workers`` forked processes.

    A feeder thread reads the input in blocks and hands out each block's whole lines as a job,
    to the worker with the fewest jobs in hand; this thread takes each job's documents back
    (one block of lines) as they finish, from any worker, and writes them in input order as
    :func:`run` writes a batch. So a worker held up by a heavy job or a busy core gets fewer
    jobs, and the output is the same bytes as one process writes, in order; only this process
    writes, counts and handles stop signals (the workers ignore them and end when their input
    closes). A job and its documents wait in a slot of shared memory (see
    :class:`SharedSlots`), so per job this process copies the input into a slot and does a
    few calls whatever the number of lines: nearly all the CPU goes to the mapping."""
    context = multiprocessing.get_context("fork")  # the compiled mappings come along, unpickled
    pipes = [(context.Pipe(duplex=False), context.Pipe(duplex=False)) for _ in range(workers)]
    for (_, job_out), (result_in, _) in pipes:  # a job, or most of a result too big for its slot
        _widen_pipe(job_out, JOB_BYTES)
        _widen_pipe(result_in, RESULT_PIPE_BYTES)
    slots = SharedSlots(workers * JOBS_PER_WORKER, SLOT_INPUT_BYTES, SLOT_OUTPUT_BYTES)
    processes = [
        context.Process(
            target=_worker,
            args=(mapper, n, pipes, slots, max_line_bytes, name),
            name=f"j1filter worker {n + 1}",
            daemon=True,
        )
        for n in range(workers)
    ]
    for process in processes:
        process.start()
    for (job_in, _), (_, result_out) in pipes:  # the workers' ends
        job_in.close()
        result_out.close()
    order: queue.Queue[tuple[int, int] | BaseException | None] = queue.Queue()  # (worker, first line)
    free: queue.Queue[int | None] = queue.Queue()  # slots not in use; None: stop feeding
    for slot in range(len(slots.inputs)):
        free.put(slot)
    returned = [0] * workers  # jobs whose results came back, per worker (written by this thread only)
    feeder = threading.Thread(
        target=_feed,
        args=(source, [job_out for (_, job_out), _ in pipes], slots, returned, order, free, max_line_bytes),
        name="j1filter feeder",
        daemon=True,
    )
    _widen_pipe(source, JOB_BYTES)
    feeder.start()
    results: dict[Any, int] = {result_in: n for n, (_, (result_in, _)) in enumerate(pipes)}
    finished: list[deque[Returned]] = [deque() for _ in range(workers)]  # each worker's, in order
    try:
        while (job := order.get()) is not None:
            if isinstance(job, BaseException):
                raise job  # the input could not be read
            worker, first = job
            while not finished[worker]:  # meanwhile, take back what any worker has finished
                for connection in multiprocessing.connection.wait(list(results)):
                    index = results[connection]
                    try:
                        finished[index].append(_receive(connection, slots.outputs))
                    except (EOFError, OSError):  # it ended before or while sending a result
                        raise OSError(_worker_lost(processes[index], index, f"{name} {first}")) from None
                    returned[index] += 1
            slot, head, block = finished[worker].popleft()
            lines, blank_lines, pretty, count, failed = head
            stats.lines += lines
            stats.blank_lines += blank_lines
            stats.looks_pretty_printed |= pretty
            _write(out, errors_out, block, count, failed, stats)
            del block
            free.put(slot)
            if progress is not None and progress.due():
                progress.show(stats.documents, sum(stats.errors.values()))
    finally:
        for (_, job_out), (result_in, _) in pipes:
            job_out.close()
            result_in.close()
        free.put(None)  # a feeder waiting for a slot stops; one sending finds its pipe closed
        for process in processes:
            process.join(1)
            if process.is_alive():  # still mapping a job nobody will read
                process.kill()
                process.join()


def _worker_lost(process: Any, index: int, where: str) -> str:
    """Why the output stops early: which worker ended, how, and where to resume."""
    process.join(1)
    code = process.exitcode
    how = (
        f"was killed by {signal.Signals(-code).name}"
        if code is not None and code < 0 and -code in signal.valid_signals()
        else f"ended unexpectedly (exit code {code})"
    )
    return f"worker process {index + 1} {how}; every line before {where} was written, nothing from it on"


def _widen_pipe(end: Any, size: int) -> None:
    """Let a pipe hold ``size`` bytes (Linux; best effort). A pipe holds 64 KiB by default:
    a read returns at most that (more, smaller jobs), and a larger write waits for the reader
    each time it is full (a switch between the processes each time)."""
    try:
        fd = end.fileno()
        set_size = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
        if set_size is not None and stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, set_size, size)
    except (AttributeError, OSError, ValueError):  # not a file, not Linux, or above the system's limit
        pass


def read_jobs(source: BinaryIO, max_line_bytes: int, block_bytes: int = JOB_BYTES) -> Iterator[Job]:
    """The input as jobs of whole lines, one per block read (what is available, up to
    ``block_bytes``), without splitting the lines: that is the workers' business. A line
    longer than ``max_line_bytes`` is cut there and the rest read past, as by
    :func:`read_lines`, so memory stays bounded; it goes alone, with its full size."""
    read = getattr(source, "read1", None) or source.read
    first = 1
    rest: list[bytes] = []  # the start of a line, across blocks
    rest_bytes = 0
    long_head: bytes | None = None  # the first bytes of an over-long line being read past
    long_size = 0
    while chunk := read(block_bytes):
        if long_head is not None:
            end = chunk.find(b"\n")
            if end < 0:
                long_size += len(chunk)
                continue
            yield first, long_head, long_size + end + 1
            first, long_head = first + 1, None
            chunk = chunk[end + 1 :]
        cut = chunk.rfind(b"\n") + 1
        if cut:
            lines = b"".join([*rest, chunk[:cut]]) if rest else chunk[:cut]
            yield first, lines, 0
            first += lines.count(b"\n")
            rest, rest_bytes = [], 0
            del lines
        if cut < len(chunk):
            rest.append(chunk[cut:])
            rest_bytes += len(chunk) - cut
            if rest_bytes > max_line_bytes:
                long_head = b"".join(rest)[:max_line_bytes]
                long_size, rest, rest_bytes = rest_bytes, [], 0
    if long_head is not None:
        yield first, long_head, long_size
    elif rest:
        yield first, b"".join(rest), 0


def _feed(
    source: BinaryIO,
    jobs: list[Any],
    slots: SharedSlots,
    returned: list[int],
    order: queue.Queue[tuple[int, int] | BaseException | None],
    free: queue.Queue[int | None],
    max_line_bytes: int,
) -> None:
    """Hand the jobs of ``source`` out, each in a free slot to the worker with the fewest
    jobs in hand (a worker on a busier core gets fewer); say in ``order`` which worker has
    which job (None at the end, an exception if reading failed). ``returned`` counts, per
    worker, the results the main thread has taken back. A worker that has gone ends the
    feeding: the main thread says so when that job's turn comes."""
    sent = [0] * len(jobs)
    try:
        for number, (first, data, size) in enumerate(read_jobs(source, max_line_bytes)):
            slot = free.get()
            if slot is None:  # the main thread has stopped
                return
            worker = _least_busy(sent, returned, number)
            sent[worker] += 1
            try:
                _send(jobs[worker], slots.inputs[slot], (slot, first, size), data)
            except OSError:  # not the input's failure, nor the output's: not said as such
                order.put((worker, first))
                return
            order.put((worker, first))
            del data
        order.put(None)
    except Exception as exc:  # noqa: BLE001 - the input failed (said by the main thread); or the pipes were closed by a stop
        order.put(exc)


def _least_busy(sent: list[int], returned: list[int], number: int) -> int:
    """The worker with the fewest jobs in hand; of equals, the next in turn after job
    ``number``'s predecessor (so that idle workers take jobs in turn)."""
    count = len(sent)
    turn = [(number + n) % count for n in range(count)]
    return min(turn, key=lambda worker: sent[worker] - returned[worker])


def job_lines(job: Job, max_line_bytes: int) -> Iterator[tuple[bytes, int]]:
    """The lines of ``job`` as :func:`read_lines` gives them (with their full sizes)."""
    _, data, size = job
    if size:  # the head of one over-long line
        return iter([(data, size)])
    return read_lines(io.BytesIO(data), max_line_bytes, block_bytes=len(data))


def map_job(mapper: Mapper, job: Job, max_line_bytes: int, name: str) -> JobResult:
    """What one process would write for the lines of ``job``, as one block."""
    mapper.hold_clock()  # the lines of a job arrived together
    pending = Pending()
    lines = blank_lines = 0
    pretty = False
    for lines, (line, size) in enumerate(job_lines(job, max_line_bytes), 1):
        encoded = handle_line(mapper, line, size, max_line_bytes, f"{name} {job[0] + lines - 1}")
        if encoded is None:
            blank_lines += 1
            continue
        pretty = pretty or pretty_printed(line, encoded)
        pending.add(encoded)
    block, count, failed = pending.take()
    return (lines, blank_lines, pretty, count, failed), block


def _worker(
    mapper: Mapper, index: int, pipes: list[Any], slots: SharedSlots, max_line_bytes: int, name: str
) -> None:
    """One worker process: map each job's lines as one process would, send back the results."""
    for signum in STOP_SIGNALS:  # the parent decides when to stop, and ends its workers
        signal.signal(signum, signal.SIG_IGN)
    for n, ((job_in, job_out), (result_in, result_out)) in enumerate(pipes):
        job_out.close()
        result_in.close()
        if n != index:
            job_in.close()
            result_out.close()
    (jobs, _), (_, results) = pipes[index]
    try:
        while True:
            try:
                slot, first, size, data = _receive(jobs, slots.inputs)
            except EOFError:
                return
            head, block = map_job(mapper, (first, bytes(data), size), max_line_bytes, name)
            del data
            _send(results, slots.outputs[slot], (slot, head), block)
    except OSError:  # the parent has gone or stopped reading
        return
