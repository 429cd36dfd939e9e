"""The parent side of the measurement worker (``worker_child``): start, submit, a stream of results, stop.

One ``MeasureWorker`` drives one long-lived child process pinned to one GPU (``CUDA_VISIBLE_DEVICES``), so an
executor can run one per GPU. Candidates are answered in submission order. A candidate that crashes the
process (CUDA context lost, segfault), hangs past ``timeout_s`` or fails costs only itself: the worker is
restarted, the culprit answered with ``status`` ``crashed``/``timeout`` and the reason, and the candidates
submitted after it are sent to the new process. The culprit is known because the child announces each
candidate (``start`` event) before it runs user code. A worker that cannot start (the file does not build,
no GPU) raises instead: nothing can be measured then.

No torch or triton import here; tests drive it with stand-in children (``tests/fake_worker``).
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ncu_advisor.collect.profile.process import close_pipes
from ncu_advisor.errors import AdvisorError, EnvironmentNotReady, KernelFileError

WORKER_MODULE = "ncu_advisor.collect.tune.worker_child"
#: Deaths in a row (no candidate answered in between) before the worker is declared lost; a restart that
#: finds no GPU raises at once.
MAX_RESTARTS_IN_A_ROW = 8


@dataclass
class WorkerOptions:
    """How to start the child: interpreter, per-candidate timeout, timing settings, GPU."""

    python: str = sys.executable
    timeout_s: float = 120.0
    start_timeout_s: float = 600.0
    reps: int = 5
    rtol: float | None = None
    compile_threads: int = 1
    #: processes compiling a batch ahead into Triton's cache (0: none; ``compile_pool``)
    compile_procs: int = 0
    compile_ahead: bool = True
    warmup_ms: float = 25.0
    rep_ms: float = 100.0
    device: str = "cuda"
    gpu: str | None = None
    sets: dict[str, int] = field(default_factory=dict)


def worker_command(kernel_file: Path, variant: str, kernel: str, options: WorkerOptions) -> list[str]:
    """The child's argument list (``python -m ncu_advisor.collect.tune.worker_child ...``)."""
    argv = [options.python, "-m", WORKER_MODULE, str(kernel_file), variant, "--kernel", kernel]
    argv += ["--reps", str(options.reps), "--device", options.device]
    argv += ["--compile-threads", str(options.compile_threads)]
    if options.compile_procs:
        argv += ["--compile-procs", str(options.compile_procs)]
    argv += ["--warmup-ms", f"{options.warmup_ms:g}", "--rep-ms", f"{options.rep_ms:g}"]
    if options.rtol is not None:
        argv += ["--rtol", f"{options.rtol:g}"]
    if not options.compile_ahead:
        argv.append("--no-compile-ahead")
    for name, value in sorted(options.sets.items()):
        argv += ["--set", f"{name}={value}"]
    return argv


class MeasureWorker:
    """A long-lived measurement process; ``submit`` candidates, iterate ``results()``; restarts itself.

    Args:
        argv: the child's command (``worker_command``, or a stand-in in tests).
        options: timeouts and the GPU to pin (``CUDA_VISIBLE_DEVICES``).
        log_path: the child's stderr goes here (appended across restarts).
        env: extra environment variables for the child.
    """

    def __init__(
        self,
        argv: list[str],
        options: WorkerOptions | None = None,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.options = options or WorkerOptions()
        self.log_path = log_path
        self.env = dict(env or {})
        self.environment: dict[str, Any] = {}
        self.build_s: float | None = None
        self.restarts = 0
        self.compile_s = 0.0
        #: the child's ready event said it takes prefetch lists (it has a pool of compile processes)
        self.prefetches = False
        self._process: subprocess.Popen[str] | None = None
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        #: (candidate id, config, screen_ms) submitted and not answered yet
        self._pending: collections.deque[tuple[str, Any, float | None]] = collections.deque()
        self._log: TextIO | None = None
        self._launched = False

    # ------------------------------------------------------------------------------------ lifecycle
    def start(self) -> dict[str, Any]:
        """Start the child (unless ``launch`` did) and wait for ``ready``; returns its environment.

        Raises:
            EnvironmentNotReady: the child sees no GPU, or cannot be started.
            KernelFileError: the kernel file does not build in the child (its reason in the message).
        """
        if not self._launched:
            self.launch()
        self._launched = False
        return self._wait_ready()

    def launch(self) -> None:
        """Start the child without waiting for it: it imports torch and builds the model, the inputs and the
        reference (5-9 s on the H200 machine) while the caller does its own set-up; ``start`` then waits.

        Raises:
            EnvironmentNotReady: the process cannot be started.
        """
        env = {**os.environ, **self.env}
        if self.options.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.options.gpu
        if self.log_path is not None and self._log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("a", encoding="utf-8")
        self._events = queue.Queue()
        try:
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log if self._log is not None else subprocess.DEVNULL,
                text=True,
                bufsize=1,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise EnvironmentNotReady(
                f"cannot start the measurement worker: {exc}", hint="check --python names an interpreter"
            ) from None
        threading.Thread(target=self._read, args=(self._process, self._events), daemon=True).start()
        self._launched = True

    def _wait_ready(self) -> dict[str, Any]:
        event = self._next(time.monotonic() + self.options.start_timeout_s)
        if event is not None and event.get("event") == "ready":
            self.environment = dict(event.get("environment") or {})
            self.build_s = event.get("build_s")
            self.prefetches = bool(event.get("prefetch"))
            return self.environment
        self._kill()
        where = f"; log {self.log_path}" if self.log_path else ""
        if event is not None and event.get("event") == "no-gpu":
            raise EnvironmentNotReady(
                f"the measurement worker cannot use the GPU: {event.get('reason')}",
                path=self.log_path,
                hint="install a CUDA build of torch (and triton) for that python, or check the GPU",
            )
        if event is not None and event.get("event") == "error":
            # worker_command's argv: python -m MODULE FILE VARIANT ...
            file, variant = (self.argv[3:5] + ["FILE", "NAME"][len(self.argv[3:5]):])[:2]
            raise KernelFileError(
                f"variant {variant} does not build in the measurement worker: {event.get('reason')}{where}",
                path=Path(file) if file != "FILE" else None,
                hint=f"the traceback is in the worker's log; `ncu-advisor profile {file} --variant "
                f"{variant}` runs the same build alone",
            )
        raise EnvironmentNotReady(
            f"the measurement worker exited or hung before it was ready{where}",
            path=self.log_path,
            hint="read the log; a lost GPU or a broken torch install are the usual causes",
        )

    def stop(self) -> None:
        """Ask the child to stop, then kill it if it does not (at once when it was launched and never
        waited for: it may still be building)."""
        process = self._process
        if process is None:
            return
        if self._launched:
            self._launched = False
            self._kill()
        try:
            if process.stdin is not None and not process.stdin.closed:
                process.stdin.write(json.dumps({"op": "stop"}) + "\n")
                process.stdin.close()
            process.wait(timeout=10)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self._kill()
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> MeasureWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------ candidates
    def submit(
        self, candidate_id: str, config: dict[str, Any] | None, screen_ms: float | None = None
    ) -> None:
        """Queue one candidate (``TuneConfig.as_dict()``, or None: the variant as written). ``screen_ms``:
        time one repetition and stop there when it is not below this (``worker_child``'s ``screen_ms``)."""
        self._pending.append((candidate_id, config, screen_ms))
        self._send(candidate_id, config, screen_ms)

    def prefetch(self, configs: list[dict[str, Any]], quiet: str | None = None) -> bool:
        """Send configs (``TuneConfig.as_dict()``, likeliest first) for the child to compile in its pool's
        spare processes; no answer; replaces the last list; lost on a restart; sent only to a child that
        said it takes them (``ready``'s ``"prefetch": true``: it has a pool). ``quiet`` ("wait", "close"):
        the pool is quieted before the next timings instead (``ahead.AheadCompiler.quiet``). Returns whether
        it was sent."""
        process = self._process
        if process is None or process.stdin is None or not self.prefetches:
            return False
        command: dict[str, Any] = {"op": "prefetch", "configs": configs}
        if quiet:
            command["quiet"] = quiet
        try:
            process.stdin.write(json.dumps(command) + "\n")
            process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False  # it died: results() notices and restarts it
        return True

    def results(self) -> Iterator[dict[str, Any]]:
        """Yield one result per submitted candidate, in order, until none is pending."""
        deaths = 0
        while self._pending:
            # before its start event the child may be compiling the whole batch ahead
            event = self._next(time.monotonic() + self.options.timeout_s * len(self._pending))
            if event is not None and event.get("event") == "start":
                event = self._next(time.monotonic() + self.options.timeout_s)
            if event is not None and event.get("event") == "result":
                candidate_id = self._pending.popleft()[0]
                if event.get("status") != "crashed":
                    deaths = 0
                    yield {**event, "id": candidate_id}
                    continue
                yield self._culprit(candidate_id, event)  # it reported its own CUDA crash, then exited
            else:
                culprit_id = self._pending.popleft()[0]
                yield self._culprit(culprit_id, event)
            deaths += 1
            if deaths > MAX_RESTARTS_IN_A_ROW:
                raise EnvironmentNotReady(
                    f"the measurement worker died {deaths} times in a row; the GPU may be lost",
                    path=self.log_path,
                    hint="check nvidia-smi; the trajectory so far is saved",
                )
            self._restart()

    def measure_many(self, configs: list[tuple[str, dict[str, Any] | None]]) -> list[dict[str, Any]]:
        """Submit every (id, config), return their results in order."""
        for candidate_id, config in configs:
            self.submit(candidate_id, config)
        return list(self.results())

    # ------------------------------------------------------------------------------------- internals
    def _culprit(self, candidate_id: str, event: dict[str, Any] | None) -> dict[str, Any]:
        where = f"; worker log {self.log_path}" if self.log_path else ""
        if event is not None and event.get("event") == "result":  # reported its own CUDA crash
            return {**event, "id": candidate_id, "reason": f"{event.get('reason')} (worker restarted){where}"}
        process = self._process
        code = process.poll() if process is not None else None
        if event is None and code is None:
            status = "timeout"
            reason = f"ran past the {self.options.timeout_s:g} s timeout (worker killed and restarted){where}"
        else:
            status = "crashed"
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            reason = f"the worker died ({how}) while measuring it (worker restarted){where}"
        return {"event": "result", "id": candidate_id, "status": status, "correct": None, "reason": reason}

    def _restart(self) -> None:
        self._kill()
        self.restarts += 1
        self.start()
        for candidate_id, config, screen_ms in self._pending:
            self._send(candidate_id, config, screen_ms)

    def _send(self, candidate_id: str, config: dict[str, Any] | None, screen_ms: float | None = None) -> None:
        process = self._process
        if process is None or process.stdin is None:
            raise AdvisorError("the measurement worker is not started")
        command: dict[str, Any] = {"id": candidate_id, "config": config}
        if screen_ms is not None:
            command["screen_ms"] = screen_ms
        try:
            process.stdin.write(json.dumps(command) + "\n")
            process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # it died: results() notices the end of its stream and restarts it

    def _next(self, deadline: float) -> dict[str, Any] | None:
        """The next event other than progress notes; None at the end of the stream or the deadline."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                event = self._events.get(timeout=min(remaining, threading.TIMEOUT_MAX))  # inf: no limit
            except queue.Empty:
                return None
            if event is None:
                if self._process is not None:
                    try:
                        self._process.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        pass
                return None
            if event.get("event") == "compiled":
                self.compile_s += float(event.get("seconds") or 0.0)
                continue
            return event

    @staticmethod
    def _read(process: subprocess.Popen[str], events: queue.Queue[dict[str, Any] | None]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.put(event)
        events.put(None)

    def _kill(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                process.kill()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        close_pipes(process)


def kernel_log_tail(path: Path | None, lines: int = 5) -> str:
    """The last lines of a worker log (for error messages)."""
    if path is None or not path.is_file():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
