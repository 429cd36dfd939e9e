"""The host ncu lock (``--ncu-lock host``) and its default (``none``, measured on two H200s)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ncu_advisor.collect.profile.process import Cancelled, host_lock
from ncu_advisor.collect.profile.steps import ProfileOptions


def test_host_lock_serialises_holders_and_reports_the_wait(tmp_path: Path) -> None:
    path = tmp_path / "ncu.lock"
    inside: list[int] = []
    peak: list[int] = [0]
    waits: list[float] = []
    guard = threading.Lock()

    def hold() -> None:
        with host_lock(True, path=path) as waited:
            with guard:
                inside.append(1)
                peak[0] = max(peak[0], len(inside))
            time.sleep(0.3)
            with guard:
                inside.pop()
            waits.append(waited)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 1  # never two holders at once
    assert max(waits) >= 0.25  # the second one waited for the first (0.3 s hold)


def test_disabled_lock_lets_holders_overlap(tmp_path: Path) -> None:
    path = tmp_path / "ncu.lock"
    with host_lock(True, path=path):
        with host_lock(False, path=path) as waited:  # "none": no flock taken at all
            assert waited == 0.0


def test_cancel_while_waiting_raises(tmp_path: Path) -> None:
    path = tmp_path / "ncu.lock"
    cancel = threading.Event()
    cancel.set()
    got: list[BaseException] = []

    def wait_for_it() -> None:
        try:
            with host_lock(True, cancel, path=path):
                pass
        except Cancelled as exc:
            got.append(exc)

    with host_lock(True, path=path):
        t = threading.Thread(target=wait_for_it)
        t.start()
        t.join(5)
    assert got and "ncu lock" in str(got[0])


def test_default_is_no_lock() -> None:
    # bench/results/2026-11-30-scale-h200x2/scale-b.json: 2 GPUs, 12 variants, 110 s without, 125 s with it
    assert ProfileOptions().ncu_lock == "none"

