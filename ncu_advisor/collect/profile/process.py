"""Running one child process of a variant: its own session, a log, a timeout, step marks, cancellation.

Every process started here is registered until it ends, so ``kill_running`` (Ctrl-C, a cancelled Dask run)
can end them all, whichever thread or worker started them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ncu_advisor.collect.executor_types import Cancelled
from ncu_advisor.collect.profile import child as child_module

PACKAGE_ROOT = Path(__file__).resolve().parents[3]
_RUNNING: dict[int, subprocess.Popen[bytes]] = {}
_RUNNING_LOCK = threading.Lock()


@dataclass(frozen=True)
class ProcessResult:
    """How a child process ended."""

    returncode: int | None
    timed_out: bool
    elapsed_s: float
    last_step: str | None


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment, the package root first on PYTHONPATH, plus ``extra`` (the GPU pin)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


def run_process(
    argv: list[str],
    log_path: Path,
    timeout_s: float,
    on_step: Callable[[str], None] | None = None,
    *,
    env: dict[str, str] | None = None,
    cancel: threading.Event | None = None,
) -> ProcessResult:
    """Run one process in its own session, output to ``log_path``; kill its whole group at the timeout.

    Lines ``child.STEP_MARK <step>`` in the output are passed to ``on_step`` while it runs.

    Args:
        env: environment overrides (``CUDA_VISIBLE_DEVICES`` of the worker's GPU).
        cancel: when set, the process group is killed and ``Cancelled`` raised.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    last_step: str | None = None
    pending = b""
    with open(log_path, "wb") as log, open(log_path, "rb") as reader:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=child_env(env),
        )
        with _RUNNING_LOCK:
            _RUNNING[proc.pid] = proc
        try:
            while True:
                try:
                    proc.wait(timeout=0.1)
                    finished = True
                except subprocess.TimeoutExpired:
                    finished = False
                text = pending + reader.read()
                cut = text.rfind(b"\n") + 1
                for line in text[:cut].decode("utf-8", "replace").splitlines():
                    if line.startswith(child_module.STEP_MARK):
                        last_step = line[len(child_module.STEP_MARK) :].strip()
                        if on_step is not None:
                            on_step(last_step)
                pending = text[cut:]
                if finished:
                    return ProcessResult(proc.returncode, False, time.monotonic() - start, last_step)
                if cancel is not None and cancel.is_set():
                    kill_group(proc)
                    raise Cancelled(f"interrupted: {argv[0]} stopped")
                if time.monotonic() - start > timeout_s:
                    kill_group(proc)
                    return ProcessResult(None, True, time.monotonic() - start, last_step)
        except BaseException:
            kill_group(proc)
            raise
        finally:
            with _RUNNING_LOCK:
                _RUNNING.pop(proc.pid, None)


@contextlib.contextmanager
def registered(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    """Register a process started elsewhere (the timing worker) so that ``kill_running`` ends it too."""
    with _RUNNING_LOCK:
        _RUNNING[proc.pid] = proc
    try:
        yield
    finally:
        with _RUNNING_LOCK:
            _RUNNING.pop(proc.pid, None)


def close_pipes(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Close a finished or killed child's stdin/stdout pipes (an already broken pipe is not an error)."""
    for stream in (proc.stdin, proc.stdout):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process's whole session (ncu and its target, the child and its helpers)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass


def kill_running() -> int:
    """Kill every process ``run_process`` started in this process and has not seen end; return how many."""
    with _RUNNING_LOCK:
        running = list(_RUNNING.values())
    for proc in running:
        kill_group(proc)
    return len(running)


NCU_LOCK_PATH = Path(tempfile.gettempdir()) / "ncu-advisor-ncu.lock"


@contextlib.contextmanager
def host_lock(
    enabled: bool, cancel: threading.Event | None = None, path: Path = NCU_LOCK_PATH
) -> Iterator[float]:
    """Hold this host's ncu lock (``flock`` on ``path``) while the block runs; yield the seconds waited.

    Every worker on the host (threads of the local executor, Dask worker processes) takes the same lock, so
    one ncu process profiles at a time and a variant's ``--timeout`` never counts the wait (see
    docs/profile.md, "Several GPUs": ncu's own cross-process serialisation). ``enabled`` False: no lock.

    Raises:
        Cancelled: ``cancel`` was set while waiting.
    """
    if not enabled:
        yield 0.0
        return
    start = time.monotonic()
    with open(path, "a+b") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("interrupted while waiting for the ncu lock") from None
                time.sleep(0.05)
        try:
            yield time.monotonic() - start
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
