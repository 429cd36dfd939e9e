"""Compile-ahead scheduling and the prefetch guess, without a GPU.

``CompilePool`` runs here over a stand-in executor (futures the test finishes by hand), so the order in which
jobs reach the processes is observed directly: requested before prefetched, at most ``procs`` in flight, a
prefetch later requested compiled once, stale prefetches dropped. The guess (``prefetch.next_configs``) is
checked on a small space, and ``run_tune`` with a prefetch hook is checked to measure exactly what it
measures without one (the hook only sends).
"""

from __future__ import annotations

import time
from concurrent.futures import Future

from ncu_advisor.collect.tune.compile_pool import CompilePool, job_key
from ncu_advisor.collect.tune.prefetch import Guess, Prefetcher, distance, next_configs
from ncu_advisor.collect.tune.searchspace import SearchSpace
from ncu_advisor.collect.tune.space import Limits, TuneConfig


class HandExecutor:
    """Futures that start at once (as an idle pool process would) and finish when the test says."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.futures: dict[str, Future] = {}

    def submit(self, fn, job):
        future: Future = Future()
        future.set_running_or_notify_cancel()
        self.started.append(job["name"])
        self.futures[job["name"]] = future
        return future

    def finish(self, name: str, seconds: float = 1.0, error: bool = False, queued: float = 0.0) -> None:
        """As ``compile_pool.precompile`` returns: (seconds, its process's ``time.monotonic()`` at the
        start), the start ``queued`` seconds after now (the hand-over happened just before)."""
        if error:
            self.futures[name].set_exception(RuntimeError("compile failed"))
        else:
            self.futures[name].set_result((seconds, time.monotonic() + queued))

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def _job(name: str) -> tuple[str, dict]:
    job = {"name": name, "path": "k.py", "kernel": "k", "constexprs": {(3,): name}, "options": {}}
    return job_key(job), job


def _pool(procs: int) -> tuple[CompilePool, HandExecutor]:
    executor = HandExecutor()
    return CompilePool(procs, executor=executor), executor


def test_at_most_procs_jobs_in_flight_and_requested_ones_go_first():
    pool, ex = _pool(2)
    pool.prefetch([_job(n) for n in ("p1", "p2", "p3", "p4")])
    assert ex.started == ["p1", "p2"]  # bounded by the process count
    for name in ("r1", "r2"):
        pool.submit(*_job(name))
    assert ex.started == ["p1", "p2"]  # nothing beyond the bound, even for a request
    ex.finish("p1")
    assert ex.started[-1] == "r1"  # the freed process takes the request, not the next prefetch
    ex.finish("p2")
    ex.finish("r1")
    assert ex.started == ["p1", "p2", "r1", "r2", "p3"]
    assert pool.stats["prefetch_started"] == 3


def test_a_prefetch_later_requested_is_compiled_once_and_counted():
    pool, ex = _pool(2)
    key, job = _job("a")
    pool.prefetch([(key, job)])
    ex.finish("a", seconds=1.5)
    pool.submit(key, job)  # already compiled: not handed to a process again
    assert ex.started == ["a"]
    assert pool.wait_state(key) == (1.5, "ready")
    assert pool.stats["prefetch_used"] == 1 and pool.stats["ready"] == 1 and pool.stats["requested"] == 1


def test_the_pool_reports_how_long_a_waited_for_job_queued_before_its_process_started_it():
    pool, ex = _pool(1)
    key, job = _job("a")
    pool.submit(key, job)
    ex.finish("a", seconds=0.5, queued=2.0)  # its process started it 2 s after the hand-over
    assert pool.wait_state(key) == (0.5, "ready")
    assert 1.9 <= pool.stats["queue_s"] <= 2.1
    assert "warm_s" not in pool.stats  # no warm-up asked of this pool: nothing to time


def test_a_running_compile_is_waited_for_and_a_queued_one_is_left_to_the_launch():
    pool, ex = _pool(1)
    (ka, ja), (kb, jb) = _job("a"), _job("b")
    pool.submit(ka, ja)
    pool.submit(kb, jb)
    assert ex.started == ["a"]
    seconds, state = pool.wait_state(kb)  # not started: the worker's own launch compiles it, sooner
    assert (seconds, state) == (None, "own")
    ex.finish("a")
    assert ex.started == ["a"]  # the dropped job is not handed out later
    assert pool.wait_state(ka) == (1.0, "ready")
    assert pool.wait_state("unknown") == (None, None)
    assert pool.stats["own"] == 1 and pool.stats["requested"] == 2


def test_a_new_prefetch_list_drops_the_queued_stale_guesses_but_keeps_requests():
    pool, ex = _pool(1)
    pool.prefetch([_job(n) for n in ("old1", "old2", "old3")])
    pool.prefetch([_job("old2")])  # the old list had old2 queued: it stays (now in the new list)
    pool.submit(*_job("req"))
    pool.prefetch([_job("new")])  # the best moved: old2 is dropped
    for name in ("old1", "req", "new"):
        ex.finish(name)
    assert ex.started == ["old1", "req", "new"]


def test_a_queued_prefetch_requested_moves_ahead_of_the_other_guesses():
    pool, ex = _pool(1)
    pool.prefetch([_job(n) for n in ("p1", "p2", "p3")])
    pool.submit(*_job("p3"))
    ex.finish("p1")
    assert ex.started == ["p1", "p3"]
    ex.finish("p3")
    assert pool.wait_state(_job("p3")[0]) == (1.0, "ready")
    assert pool.stats["prefetch_used"] == 0  # it was handed out as a request


def test_a_failed_prefetch_costs_nothing():
    pool, ex = _pool(1)
    key, job = _job("bad")
    pool.prefetch([(key, job)])
    ex.finish("bad", error=True)
    pool.submit(key, job)
    assert pool.wait_state(key) == (None, "ready")  # the launch compiles it and reports the real error


def test_the_job_key_is_the_compile_not_the_candidate():
    a = {"path": "k.py", "kernel": "k", "constexprs": {(3,): 64}, "options": {"num_warps": 4}}
    assert job_key(a) == job_key(dict(reversed(list(a.items()))))
    assert job_key(a) != job_key({**a, "options": {"num_warps": 8}})


# ------------------------------------------------------------------------------------------- the guess
SPACE = SearchSpace((("BLOCK", (32, 64, 128, 256, 512)), ("num_warps", (1, 2, 4, 8)), ("num_stages", (1, 2))))
LIMITS = Limits(
    allowed={"BLOCK": SPACE.values("BLOCK")}, warp_choices=(1, 2, 4, 8), stage_choices=(1, 2), snap=True
)
BEST = TuneConfig.make({"BLOCK": 64}, 4, 1)


def _c(block: int, warps: int, stages: int = 1) -> TuneConfig:
    return TuneConfig.make({"BLOCK": block}, warps, stages)


def test_the_guess_leads_with_the_leaders_round_and_never_repeats_what_was_measured():
    batch = [_c(128, 4), _c(32, 4), _c(64, 8)]
    guess = Guess(BEST, [], LIMITS, {BEST}, rest=[_c(64, 2)], coupled=False, space=SPACE)
    plain = next_configs(guess, batch)
    assert plain[0] == _c(64, 2)  # the cut round's rest is the next batch when nothing is kept
    assert not set(plain) & (set(batch) | {BEST})
    assert len(plain) == len(set(plain))
    assert set(plain) == {c for c in SPACE.configs()} - set(batch) - {BEST}  # the space's rest at the end
    led = next_configs(guess, batch, leader=_c(128, 4))
    neighbours = {_c(256, 4), _c(128, 2), _c(128, 8)}  # one step from the leader
    assert neighbours <= set(led[:8])
    assert led.index(_c(64, 2)) > min(led.index(c) for c in neighbours)


def test_the_exhaustive_guess_is_the_next_chunks_only_and_the_space_tail_is_nearest_first():
    rest = [_c(512, 1), _c(512, 2)]
    guess = Guess(BEST, [], LIMITS, {BEST}, rest=rest, coupled=True, exhaustive=True)
    assert next_configs(guess, [_c(32, 1)]) == rest
    tail = next_configs(Guess(BEST, [], LIMITS, {BEST}, [], True, SPACE), [])
    assert [distance(c, BEST) for c in tail[-5:]] == sorted(distance(c, BEST) for c in tail[-5:])
    assert distance(_c(512, 1), BEST) == 3 + 2  # three BLOCK steps, two num_warps steps


def test_the_prefetcher_sends_on_a_new_leader_only():
    from ncu_advisor.collect.tune.backend import Measurement

    sent: list[list[TuneConfig]] = []
    prefetcher = Prefetcher(sent.append, min_gain=0.02)
    batch = [_c(128, 4), _c(32, 4)]
    prefetcher.before(batch)
    assert sent == []  # not planned (a confirmation, the final pick): nothing sent
    prefetcher.plan(Guess(BEST, [], LIMITS, {BEST}, [], False, SPACE))
    prefetcher.before(batch)
    best = Measurement("ok", [10.0, 10.1, 10.2], True)
    slower = Measurement("ok", [11.0, 11.0, 11.0], True)
    faster = Measurement("ok", [8.0, 8.1, 8.2], True)
    prefetcher.result(batch, [slower], best)
    assert len(sent) == 1
    prefetcher.result(batch, [slower, faster], best)
    assert len(sent) == 2 and sent[1] == next_configs(prefetcher.guess, batch, leader=batch[1])
    prefetcher.result(batch, [slower, faster], best)
    assert len(sent) == 2
    prefetcher.done()
    prefetcher.result(batch, [faster], best)
    assert len(sent) == 2


# ------------------------------------------------------------------- the recorded H200 sweeps, replayed
def _score(log: list[tuple[str, list]]) -> tuple[int, int]:
    """(requested configs found in the guesses of the batch before, configs requested for the first time).

    A list sent just before a batch (``Prefetcher.before``) and those sent during it (a new leader) are the
    guesses the pool compiles while that batch is timed: they count for the next batch. Re-timings (the
    confirmation, the final pick) and the start are not counted; the first batch neither (its guess is made
    by ``TuneSession.first_round_guess``, outside the loop)."""
    hits = asked = 0
    window: set = set()
    measured: set = set()
    first = True
    for i, (kind, configs) in enumerate(log):
        before = i + 1 < len(log) and log[i + 1][0] == "batch"
        if kind == "list":
            if not before:
                window |= set(configs[:REACH])
            continue
        fresh = [c for c in configs if c is not None and c not in measured]
        if fresh and not first:
            hits += sum(1 for c in fresh if c in window)
            asked += len(fresh)
        first = first and not fresh
        measured |= set(configs)
        window = set(log[i - 1][1][:REACH]) if i and log[i - 1][0] == "list" else set()
    return hits, asked


#: Guesses the pool can compile while one batch is timed: twelve processes (``COMPILE_PROCS=12``), two
#: compile waves (~1-2 s per Triton compile, a batch timed in 2-9 s on the 2026-11-30 two-H200 bench).
REACH = 24


def _replay_with_prefetch(result: dict, monkeypatch) -> tuple[list, list, object]:
    """The replay of ``test_tune_search_replay`` with a prefetch hook; returns the event log (("batch",
    configs) as each batch is measured, ("list", configs) as each prefetch list is sent), the trials."""
    import tests.test_tune_search_replay as replay_module

    log: list[tuple[str, list]] = []
    real = replay_module.run_tune

    def with_prefetch(*args, **kwargs):
        many = kwargs["measure_many"]

        def logged(configs, screen_ms=None):
            log.append(("batch", list(configs)))
            return many(configs, screen_ms)

        kwargs["measure_many"] = logged
        return real(*args, prefetch=lambda configs: log.append(("list", list(configs))), **kwargs)

    monkeypatch.setattr(replay_module, "run_tune", with_prefetch)
    trajectory, _ = replay_module.replay(result, screen=True)
    return log, [(t.config, t.verdict, t.status) for t in trajectory.trials], trajectory


def test_prefetch_changes_nothing_measured_and_guesses_most_of_each_next_batch(monkeypatch):
    import tests.test_tune_search_replay as replay_module

    if not replay_module.CASES:
        import pytest

        pytest.skip("no recorded bench_tune.json under bench/results")
    hits = asked = 0
    for _date, _key, result in replay_module.CASES:
        plain, _ = replay_module.replay(result, screen=True)
        log, trials, _t = _replay_with_prefetch(result, monkeypatch)
        monkeypatch.undo()
        # the same configs measured, the same verdicts
        assert trials == [(t.config, t.verdict, t.status) for t in plain.trials]
        hit, ask = _score(log)
        hits, asked = hits + hit, asked + ask
    print(f"prefetch guesses within the first {REACH} of a list: {hits}/{asked} requested configs")
    assert asked and hits / asked >= 0.5


def test_the_worker_loop_puts_a_prefetch_after_the_requests_that_came_with_it():
    """``worker_child.serve`` with a stand-in worker: a prefetch that arrives with a batch reaches the pool
    after the batch's requested compiles; one that arrives during the batch, between two measurements."""
    import io
    import queue

    from ncu_advisor.collect.tune import worker_child

    calls: list[str] = []
    commands: queue.Queue = queue.Queue()

    class Stand:
        captured = ("args", {})

        def compile_ahead(self, todo):
            if todo:
                calls.append("request " + ",".join(c["id"] for c in todo))
            return 0.0

        def prefetch(self, command):  # the whole command: its configs, and "quiet" when it quiets the pool
            calls.append("prefetch " + ",".join(c["name"] for c in command["configs"]))

        def measure(self, config, candidate_id, screen):
            calls.append("measure " + candidate_id)
            if candidate_id == "1":  # the parent's next list arrives while "1" is timed
                commands.put({"op": "prefetch", "configs": [{"name": "later"}]})
            if candidate_id == "2":  # the parent's stop, after the last result
                commands.put({"op": "stop"})
            return {"status": "ok"}

    commands.put({"op": "prefetch", "configs": [{"name": "first"}]})
    for i in ("1", "2"):
        commands.put({"id": i, "config": {"params": {}}})
    assert worker_child.serve(Stand(), io.StringIO(), commands) == 0
    assert calls == ["request 1,2", "prefetch first", "measure 1", "prefetch later", "measure 2"]


def test_a_tile_computed_at_run_time_is_guessed_per_value_and_the_launched_one_kept(monkeypatch):
    """softmax.py's ModelNew passes ``BLOCK_SIZE = next_power_of_2(cols)``: no static start value. The
    first-round guess is made for each value the space lists, tagged with it; the worker's first launch
    (``BLOCK_SIZE=4096``) keeps the guesses of 4096 and the untagged ones."""
    from pathlib import Path

    from ncu_advisor.collect.tune import ahead
    from ncu_advisor.collect.tune.run import start_values
    from ncu_advisor.collect.tune.session import plan_tune

    root = Path(__file__).resolve().parents[1]
    runtime = plan_tune(root / "kernels" / "softmax.py", "ModelNew")
    spec = {"BLOCK_SIZE": [2048, 4096], "num_warps": [4, 8]}
    assert start_values(runtime, spec) == [{}, {"BLOCK_SIZE": 2048}, {"BLOCK_SIZE": 4096}]
    assert len(start_values(runtime, None)) == 12  # {} and the 11 powers of two 16..16384
    static = plan_tune(root / "kernels" / "elementwise.py", "ModelNew")  # BLOCK_SIZE=1024 in the source
    assert start_values(static, None) == [{}]

    class Pool:
        lists: list = []

        def prefetch(self, jobs):
            self.lists.append([job["values"] for _, job in jobs])

    def fake_capture(jit, path, kernel, args, kwargs):
        return {"values": {k: v for k, v in kwargs.items() if k != "x"}}

    monkeypatch.setattr(ahead, "capture_job", fake_capture)
    compiler = ahead.AheadCompiler(Pool(), None, Path("k.py"), "k")
    guesses = [
        {"params": {"BLOCK_SIZE": 1024}, "num_warps": 8, "num_stages": 3, "when": {"BLOCK_SIZE": 2048}},
        {"params": {"BLOCK_SIZE": 8192}, "num_warps": 8, "num_stages": 3, "when": {"BLOCK_SIZE": 4096}},
        {"params": {}, "num_warps": 4, "num_stages": 3},
    ]
    compiler.prefetch(guesses)
    assert Pool.lists == []  # held: no launch captured yet
    compiler.set_captured(((), {"BLOCK_SIZE": 4096, "x": 1}))
    assert Pool.lists == [
        [
            {"BLOCK_SIZE": 8192, "num_warps": 8, "num_stages": 3},  # tagged 4096, the launched value
            {"BLOCK_SIZE": 4096, "num_warps": 4, "num_stages": 3},  # untagged: the launch's own BLOCK_SIZE
        ]
    ]


def test_the_first_batch_is_guessed_before_the_start_on_the_recorded_sweeps(monkeypatch):
    """``TuneSession.first_round_guess`` (sent before the start is measured) against the first batch the
    replayed search asks for, keeping the guesses whose assumed launch values match the start's."""
    import types

    import tests.test_tune_search_replay as replay_module
    from ncu_advisor.collect.tune.run import TuneSession
    from ncu_advisor.collect.tune.session import plan_tune
    from ncu_advisor.model import LaunchConfig

    if not replay_module.CASES:
        import pytest

        pytest.skip("no recorded bench_tune.json under bench/results")
    hits = asked = 0
    for _date, key, result in replay_module.CASES:
        path = replay_module.ROOT / (result.get("file") or replay_module.ZOO_FILES[key])
        plan = plan_tune(path, result["variant"])
        session = types.SimpleNamespace(
            plan=plan,
            space_spec=result["sweep"].get("space") or None,
            settings=types.SimpleNamespace(space_file=None),
            trajectory=types.SimpleNamespace(start=plan.start),
        )
        launched = LaunchConfig.from_dict(result["tune"]["trajectory"]["trials"][0]["config"]).param_dict
        guess = TuneSession.first_round_guess(session)  # type: ignore[arg-type]
        kept = {c for c, when in guess if all(launched.get(k) == v for k, v in when.items())}
        log, _trials, _t = _replay_with_prefetch(result, monkeypatch)
        monkeypatch.undo()
        batches = [configs for kind, configs in log if kind == "batch" and configs != [None]]
        if batches:
            hits += sum(1 for c in batches[0] if c in kept)
            asked += len(batches[0])
    print(f"first batch guessed before the start: {hits}/{asked} configs")
    assert asked and hits / asked >= 0.75


def test_the_backend_sends_the_start_guess_first_a_batch_guess_after_its_candidates():
    from ncu_advisor.collect.tune.backend import WorkerBackend

    sent: list[str] = []

    class Stand:
        environment: dict = {}
        pending: list = []

        def start(self):
            return {}

        def submit(self, candidate_id, config, screen_ms=None):
            sent.append(f"submit {candidate_id}")
            self.pending.append(candidate_id)

        def prefetch(self, configs):
            sent.append(
                "prefetch "
                + ",".join(str(c["params"].get("BLOCK")) + str(c.get("when", "")) for c in configs)
            )

        def results(self):
            while self.pending:
                yield {
                    "event": "result",
                    "id": self.pending.pop(0),
                    "status": "ok",
                    "correct": True,
                    "reps_ms": [1.0],
                    "compile": "ready",
                    "pool": {"prefetch_started": 2},
                    "launched_with": {"BLOCK": 64},  # the start launched the kernel (else: exit 2)
                }

    backend = WorkerBackend(Stand(), "k")
    backend.prefetch([_c(128, 4)], when=[{"BLOCK": 64}])
    list(backend.measure_many([None]))
    backend.prefetch([_c(256, 4)])
    results = backend.measure_many([_c(128, 4)])
    next(results)
    backend.prefetch([_c(512, 4)])  # during a batch (a new leader): sent at once
    list(results)
    assert sent == ["prefetch 128{'BLOCK': 64}", "submit 0000", "submit 0001", "prefetch 256", "prefetch 512"]
    summary = backend.compile_summary()
    assert summary == {"found": {"ready": 2}, "pool": {"prefetch_started": 2}, "lists": 3}


def test_a_broken_pool_leaves_every_compile_to_the_launch():
    pool, ex = _pool(1)
    pool.prefetch([_job("a"), _job("b")])

    def refuse(fn, job):
        raise RuntimeError("A process in the process pool was terminated abruptly")

    ex.submit = refuse
    ex.finish("a")  # frees the process: handing "b" to the broken executor fails
    pool.submit(*_job("c"))
    assert pool.broken and pool.wait_state(_job("b")[0]) == (None, None)
    assert pool.wait_state(_job("c")[0]) == (None, "own")  # never handed out: the launch compiles it
    assert pool.wait_state(_job("a")[0]) == (1.0, "ready")


def test_the_worker_spawns_its_pool_only_when_compiling_ahead_is_on(monkeypatch):
    """``ahead.start_pool`` (called by ``worker_child.main`` before it imports torch): a pool warmed with the
    kernel file for ``--compile-procs N``; none for 0, ``--no-compile-ahead`` or ``TRITON_INTERPRET=1``."""
    from argparse import Namespace

    from ncu_advisor.collect.tune import ahead

    made = []
    monkeypatch.setattr(ahead, "CompilePool", lambda procs, warm: made.append((procs, warm)) or "pool")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    args = Namespace(compile_procs=12, no_compile_ahead=False, file="k.py")
    assert ahead.start_pool(args) == "pool" and made == [(12, "k.py")]
    assert ahead.start_pool(Namespace(compile_procs=0, no_compile_ahead=False, file="k.py")) is None
    assert ahead.start_pool(Namespace(compile_procs=12, no_compile_ahead=True, file="k.py")) is None
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert ahead.start_pool(args) is None
    assert made == [(12, "k.py")]


def test_quiet_drops_the_queued_guesses_waits_for_the_running_compiles_or_closes_the_pool(monkeypatch):
    """``AheadCompiler.quiet`` before the timings that settle a choice (the confirmation, the final pick)."""
    from ncu_advisor.collect.tune import ahead

    monkeypatch.setattr(ahead, "QUIET_WAIT_S", 0.05)  # the stand-in's compiles never end by themselves
    pool, ex = _pool(2)
    compiler = ahead.AheadCompiler(pool, jit=None, path="k.py", kernel="k")
    compiler.pending = [{"params": {"BLOCK": 64}}]
    pool.prefetch([_job(n) for n in ("p1", "p2", "p3", "p4")])
    assert ex.started == ["p1", "p2"]
    assert compiler.quiet("wait") is False  # waited (here: at most QUIET_WAIT_S) for p1 and p2
    assert compiler.pending is None
    ex.finish("p1")
    ex.finish("p2")
    assert ex.started == ["p1", "p2"]  # p3 and p4 were dropped: nothing starts beside the timings
    closed = []
    ex.shutdown = lambda wait=True, cancel_futures=False: closed.append(cancel_futures)
    assert compiler.quiet("close") is True and closed == [True]


def test_drain_returns_when_the_running_compiles_end_or_at_its_timeout():
    pool, ex = _pool(2)
    pool.prefetch([_job("a"), _job("b")])
    ex.finish("a")
    pool.drain(0.05)  # b never ends here: drain gives up after its timeout instead of hanging
    ex.finish("b")
    pool.drain(30.0)  # both done: returns at once (a hang here would fail the test run)
    assert all(e.future.done() for e in pool.entries.values())


def test_the_worker_and_the_backend_pass_quiet_along():
    from ncu_advisor.collect.tune.backend import WorkerBackend
    from ncu_advisor.collect.tune.worker_child import Worker

    calls = []

    class Ahead:
        def quiet(self, mode):
            calls.append(("quiet", mode))
            return mode == "close"

        def prefetch(self, configs):
            calls.append(("prefetch", configs))

    worker = object.__new__(Worker)  # its __init__ imports torch and builds the model: not needed here
    worker.ahead, worker.pool = Ahead(), "pool"
    worker.prefetch({"op": "prefetch", "configs": [{"num_warps": 4}]})
    worker.prefetch({"op": "prefetch", "configs": [], "quiet": "wait"})
    assert worker.ahead is not None and worker.pool == "pool"
    worker.prefetch({"op": "prefetch", "configs": [], "quiet": "close"})
    assert worker.ahead is None and worker.pool is None  # closed: later launches compile themselves
    worker.prefetch({"op": "prefetch", "configs": [{"num_warps": 8}]})  # no pool: nothing to do
    assert calls == [("prefetch", [{"num_warps": 4}]), ("quiet", "wait"), ("quiet", "close")]

    sent = []

    class Measure:
        def prefetch(self, configs, quiet=None):
            sent.append((configs, quiet))

    backend = WorkerBackend(Measure(), "k")
    backend.quiet(False)  # not started yet: nothing to quiet
    backend.started = True
    backend.quiet(False)
    backend.quiet(True)
    assert sent == [([], "wait"), ([], "close")]
