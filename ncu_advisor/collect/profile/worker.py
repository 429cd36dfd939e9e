"""The parent side of the timing worker (``profile.worker_child``): one long-lived process per GPU.

``TimingWorker.run(argv, log, timeout_s, ...)`` runs one bare child command (``python -m
ncu_advisor.collect.profile.child ... --mode bench``) in the worker instead of in a fresh process and returns
the same ``ProcessResult`` as ``process.run_process``, so ``judge.judge_bench`` judges both paths alike and
the variant's folder (``result.json``, ``child.log``) has the same form. What it saves is the start-up of a
process per variant: interpreter, torch/triton imports and the CUDA context (6.4 s per variant on an H200,
7.2 s with two GPUs starting processes at once; bench/results/2026-11-30-scale-h200x2).

Faults cost only the job that caused them, as with a process per variant: the worker ends after a crash of
the CUDA context (exit 4), a raise (exit 1), an ``incorrect`` result or a signal, and the next job starts a
fresh worker; a job past
its timeout gets the worker's process group killed (``timed_out``); Ctrl-C (``cancel``) kills it and raises
``Cancelled``. The worker is registered with ``process`` while a job runs, so ``process.kill_running`` ends it
too. A worker that cannot start (no interpreter, it exits before it is ready) raises ``EnvironmentNotReady``,
which a job turns into ``GpuUnusable`` (that GPU takes no more variants; the job is retried on another).

Parent and worker speak one JSON object a line (``ready``/``start``/``result`` events, as tune's measurement
worker does); no torch or triton import here.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ncu_advisor.collect.executor_types import Cancelled
from ncu_advisor.collect.profile import child as child_module
from ncu_advisor.collect.profile import process as process_module
from ncu_advisor.collect.profile.process import ProcessResult
from ncu_advisor.errors import EnvironmentNotReady

WORKER_MODULE = "ncu_advisor.collect.profile.worker_child"
STATE_KEY = "profile-timing-worker"


def serves(argv: list[str], python: str) -> bool:
    """Whether ``argv`` is a bare child command this worker can run (same interpreter, the child module)."""
    return len(argv) > 3 and argv[0] == python and argv[1:3] == ["-m", child_module.__name__]


class TimingWorker:
    """A long-lived timing process pinned to one GPU; restarts itself after a job that ended it.

    Args:
        python: the interpreter (``ProfileOptions.python``).
        env: environment overrides (the GPU's ``CUDA_VISIBLE_DEVICES``).
        start_timeout_s: how long start-up (imports, CUDA context) may take.
        log_path: the worker's own output between jobs (default: a file in the temporary directory).
    """

    def __init__(
        self,
        python: str,
        env: dict[str, str] | None = None,
        start_timeout_s: float = 300.0,
        log_path: Path | None = None,
    ) -> None:
        self.python = python
        self.env = dict(env or {})
        self.start_timeout_s = start_timeout_s
        self.log_path = log_path
        self.starts = 0
        self.start_spans: list[tuple[float, float]] = []  # (time.monotonic() at start, when ready)
        self._process: subprocess.Popen[bytes] | None = None
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._count = 0
        self._ended = False

    # ------------------------------------------------------------------------------------ lifecycle
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, cancel: threading.Event | None = None) -> None:
        """Start the worker and wait for its ``ready`` event.

        Raises:
            EnvironmentNotReady: it cannot be started, or it exits (or hangs) before it is ready.
            Cancelled: ``cancel`` was set while waiting.
        """
        self._kill()
        begun = time.monotonic()
        if self.log_path is None:
            visible = self.env.get("CUDA_VISIBLE_DEVICES", "default") or "default"
            handle, name = tempfile.mkstemp(prefix=f"ncu-advisor-timing-gpu{visible}-", suffix=".log")
            self.log_path = Path(name)
            os.close(handle)
        log = open(self.log_path, "ab")  # noqa: SIM115 (the worker's stderr for its whole life)
        try:
            self._process = subprocess.Popen(
                [self.python, "-m", WORKER_MODULE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                env=process_module.child_env(self.env),
            )
        except OSError as exc:
            raise EnvironmentNotReady(
                f"cannot start the timing worker ({self.python}): {exc}",
                hint="check --python names an interpreter",
            ) from None
        finally:
            log.close()
        self.starts += 1
        self._events = queue.Queue()
        self._ended = False
        threading.Thread(target=_read, args=(self._process.stdout, self._events), daemon=True).start()
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            event = self._wait(deadline, cancel)
            if event is not None and event.get("event") == "ready":
                self.start_spans.append((begun, time.monotonic()))
                return
            if event is None or event.get("event") != "ready":
                self._kill()
                raise EnvironmentNotReady(
                    f"the timing worker exited or hung before it was ready; log {self.log_path}",
                    path=self.log_path,
                    hint="read the log; a broken torch install or a lost GPU are the usual causes",
                )

    def stop(self) -> None:
        """Ask the worker to stop; kill it if it does not within 10 s."""
        process = self._process
        if process is None:
            return
        try:
            if process.stdin is not None and not process.stdin.closed:
                process.stdin.write(b'{"op": "stop"}\n')
                process.stdin.close()
            process.wait(timeout=10)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self._kill()
        self._process = None

    # ------------------------------------------------------------------------------------------ jobs
    def run(
        self,
        argv: list[str],
        log_path: Path,
        timeout_s: float,
        on_step: Callable[[str], None] | None = None,
        *,
        cancel: threading.Event | None = None,
    ) -> ProcessResult:
        """Run one bare child command (``serves(argv, python)``) in the worker; see the module docstring.

        Returns:
            ``ProcessResult``: ``returncode`` the child's exit code (negative: the signal that ended the
            worker), ``timed_out`` past ``timeout_s``, ``last_step`` the last step mark in the log.

        Raises:
            EnvironmentNotReady: the worker cannot start.
            Cancelled: ``cancel`` was set (the worker is killed).
        """
        if not self.alive():
            self.start(cancel)
        process = self._process
        assert process is not None and process.stdin is not None
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_bytes(b"")
        self._count += 1
        job_id = self._count
        start = time.monotonic()
        command = {"id": job_id, "argv": argv[3:], "log": str(log_path)}
        try:
            process.stdin.write((json.dumps(command) + "\n").encode())
            process.stdin.flush()
        except (OSError, ValueError):
            pass  # it died: its stream ends and the job is judged by its exit code
        marks = _StepMarks(log_path, on_step)
        with process_module.registered(process):
            try:
                while True:
                    event = self._wait(time.monotonic() + 0.1, None)
                    marks.poll()
                    if event is not None and event.get("event") == "result" and event.get("id") == job_id:
                        code = int(event.get("rc") or 0)
                        if code != 0 or event.get("exits"):  # it ends: never hand it the next job
                            self._finish(process)
                        marks.poll()
                        return ProcessResult(code, False, time.monotonic() - start, marks.last)
                    if event is None and self._ended:  # the worker died during the job
                        code = self._finish(process)
                        marks.poll()
                        return ProcessResult(code, False, time.monotonic() - start, marks.last)
                    if cancel is not None and cancel.is_set():
                        self._kill()
                        raise Cancelled("interrupted: timing worker stopped")
                    if time.monotonic() - start > timeout_s:
                        self._kill()
                        marks.poll()
                        return ProcessResult(None, True, time.monotonic() - start, marks.last)
            except BaseException:
                self._kill()
                raise

    # ------------------------------------------------------------------------------------- internals
    def _wait(self, deadline: float, cancel: threading.Event | None) -> dict[str, Any] | None:
        """The next event before ``deadline`` (None: none came, or the stream ended)."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                event = self._events.get(timeout=min(remaining, 0.1))
            except queue.Empty:
                if cancel is not None and cancel.is_set():
                    self._kill()
                    raise Cancelled("interrupted while the timing worker started") from None
                if self._ended:
                    return None
                continue
            if event is None:
                self._ended = True
                return None
            if event.get("event") != "start":
                return event

    def _finish(self, process: subprocess.Popen[bytes]) -> int:
        """The exit code of a worker that is ending (killed when it has not ended within 10 s)."""
        try:
            return process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._kill()
            return process.wait()

    def _kill(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process_module.kill_group(process)
        process_module.close_pipes(process)


class _StepMarks:
    """Reads ``child.STEP_MARK`` lines a job writes to its log, as ``process.run_process`` does."""

    def __init__(self, log_path: Path, on_step: Callable[[str], None] | None) -> None:
        self.log_path = log_path
        self.on_step = on_step
        self.offset = 0
        self.pending = b""
        self.last: str | None = None

    def poll(self) -> None:
        try:
            with open(self.log_path, "rb") as reader:
                reader.seek(self.offset)
                data = reader.read()
        except OSError:
            return
        self.offset += len(data)
        text = self.pending + data
        cut = text.rfind(b"\n") + 1
        for line in text[:cut].decode("utf-8", "replace").splitlines():
            if line.startswith(child_module.STEP_MARK):
                self.last = line[len(child_module.STEP_MARK) :].strip()
                if self.on_step is not None:
                    self.on_step(self.last)
        self.pending = text[cut:]


def _read(stream: IO[bytes] | None, events: queue.Queue[dict[str, Any] | None]) -> None:
    if stream is None:
        events.put(None)
        return
    try:
        for line in stream:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.put(event)
    except (OSError, ValueError):
        pass
    events.put(None)
