"""The tune child wrapper and the child backend's command line (no torch: the profile child's main is a
stand-in)."""

from __future__ import annotations

import json
from pathlib import Path

from ncu_advisor.collect.profile import child as profile_child
from ncu_advisor.collect.profile.runner import CHILD_MODULE, ProfileOptions
from ncu_advisor.collect.tune import child as tune_child
from ncu_advisor.collect.tune.loop import TUNE_CHILD_MODULE, ChildBackend
from ncu_advisor.collect.tune.space import TuneConfig

KERNEL_FILE = """
class FakeJIT:
    arg_names = ["x", "C_out", "BLOCK_N"]
    def run(self, *args, grid, warmup, **kwargs):
        return grid(dict(zip(self.arg_names, args), **kwargs)) if callable(grid) else grid
    def __getitem__(self, grid):
        return lambda *a, **k: self.run(grid=grid, warmup=False, *a, **k)

kern = FakeJIT()

class ModelNew_v:
    def forward(self):
        return kern[lambda meta: (128 // meta["BLOCK_N"],)](0, 128, BLOCK_N=32, num_warps=4)
"""


def test_tune_child_pins_after_import_and_writes_the_record(tmp_path, monkeypatch):
    path = tmp_path / "k.py"
    path.write_text(KERNEL_FILE)
    seen = {}

    def stand_in_main(argv):
        seen["argv"] = argv
        module = profile_child.load_module(Path(argv[0]))
        seen["grid"] = getattr(module, argv[1])().forward()
        return 0

    monkeypatch.setattr(profile_child, "main", stand_in_main)
    record_path = tmp_path / "override.json"
    override = json.dumps({"kernel": "kern", "params": {"BLOCK_N": 128}, "num_warps": 8})
    code = tune_child.main(
        [
            str(path),
            "ModelNew_v",
            "--override",
            override,
            "--override-record",
            str(record_path),
            "--mode",
            "bench",
        ]
    )
    assert code == 0
    assert seen["argv"] == [str(path), "ModelNew_v", "--mode", "bench"]  # our flags are not passed on
    assert seen["grid"] == (1,)  # 128 // BLOCK_N=128
    record = json.loads(record_path.read_text())
    assert record["method"] == "launch-kwargs"
    assert record["launched_with"] == {"BLOCK_N": 32, "num_warps": 4}
    assert record["int_args"]["C_out"] == 128
    assert profile_child.load_module.__name__ == "load_module"  # restored


def test_tune_child_rejects_a_malformed_override(capsys):
    assert tune_child.main(["k.py", "ModelNew_v", "--override", "{oops"]) == 2
    assert "--override is not JSON" in capsys.readouterr().err


def test_child_backend_command_line(tmp_path):
    options = ProfileOptions(reps=7, python="/usr/bin/python3")
    backend = ChildBackend(tmp_path / "k.py", "ModelNew_v", "kern", tmp_path, options)
    config = TuneConfig.make({"BLOCK_N": 128}, 8, 3)
    argv = backend._argv(config, "bench", tmp_path / "t", tmp_path / "t" / "result.json")
    assert argv[:3] == ["/usr/bin/python3", "-m", TUNE_CHILD_MODULE] and CHILD_MODULE not in argv
    override = json.loads(argv[argv.index("--override") + 1])
    assert override == {"kernel": "kern", "params": {"BLOCK_N": 128}, "num_warps": 8, "num_stages": 3}
    assert argv[argv.index("--override-record") + 1] == str(tmp_path / "t" / "override.json")
    assert argv[argv.index("--reps") + 1] == "7" and argv[argv.index("--mode") + 1] == "bench"
    start = backend._argv(None, "ncu", tmp_path / "t", tmp_path / "t" / "ncu_result.json")
    assert json.loads(start[start.index("--override") + 1]) == {"kernel": "kern"}


FAKE_NCU = Path(__file__).resolve().parent / "fake_ncu" / "ncu"
SEED_REPORT = (
    Path(__file__).resolve().parents[1]
    / "examples"
    / "reports"
    / "h200-seed"
    / "ModelNew_seed001_small.ncu-rep.gz"
)


def test_child_backend_profile_reads_the_report_and_merges_triton_counts(tmp_path, monkeypatch):
    """ChildBackend.profile through the stand-in ncu (it copies the recorded seed-001 H200 report to -o)."""
    from ncu_advisor.collect.tune.loop import Measurement
    from ncu_advisor.ingest.readers import read_report

    monkeypatch.setenv("FAKE_NCU_REPORT", str(SEED_REPORT))
    argv_log = tmp_path / "argv.jsonl"
    monkeypatch.setenv("FAKE_NCU_ARGV_LOG", str(argv_log))
    options = ProfileOptions(timeout_s=60)
    backend = ChildBackend(
        tmp_path / "k.py",
        "ModelNew_seed001",
        "conv2d_scale_min_kernel",
        tmp_path,
        options,
        ncu=FAKE_NCU,
        metrics=["launch__registers_per_thread"],
    )
    config = TuneConfig.make({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 32}, 4, 2)
    table = backend.profile(config, Measurement("ok", [1.0], True, n_regs=187, n_spills=0))
    expected = read_report(SEED_REPORT, variant="ModelNew_seed001")
    assert list(table["kernel"]) == list(expected["kernel"]) == ["conv2d_scale_min_kernel"]
    assert table["launch__registers_per_thread"].iloc[0] == expected["launch__registers_per_thread"].iloc[0]
    assert table["n_regs"].iloc[0] == 187 and table["n_spills"].iloc[0] == 0
    argv = json.loads(argv_log.read_text().splitlines()[0])
    assert argv[argv.index("--metrics") + 1] == "launch__registers_per_thread"
    target = argv[argv.index("-f") + 1 :]
    assert target[1:3] == ["-m", TUNE_CHILD_MODULE]
    assert json.loads(target[target.index("--override") + 1])["params"]["BLOCK_N"] == 128
    assert (tmp_path / "trials" / "profile-000" / "profile.ncu-rep").is_file()
    # a failing ncu run gives no table: the rules then fall back to Triton's counts
    monkeypatch.setenv("FAKE_NCU_MODE", "no_kernels")
    assert backend.profile(config, Measurement("ok", [1.0], True)) is None


STAND_IN_PYTHON = '''#!/usr/bin/env python3
"""Stand-in for `python -m ncu_advisor.collect.tune.child ...`: writes result.json and override.json."""
import json, sys
args = sys.argv[1:]
assert args[:2] == ["-m", "ncu_advisor.collect.tune.child"], args
override = json.loads(args[args.index("--override") + 1])
out = args[args.index("--out") + 1]
record = args[args.index("--override-record") + 1]
block_n = (override.get("params") or {}).get("BLOCK_N", 32)
if block_n == 64:
    failure = {"status": "failed", "reason": "OutOfResources: out of resource: shared memory"}
    json.dump(failure, open(out, "w"))
    sys.exit(1)
ms = 10.0 * 128 / block_n
json.dump({"status": "ok", "timings_ms": [ms, ms * 1.01, ms * 0.99], "correctness": {"passed": True},
           "triton_kernels": [{"name": "conv2d_scale_min_kernel", "n_regs": 100 + block_n, "n_spills": 0}]},
          open(out, "w"))
json.dump({"method": "launch-kwargs", "launched_with": {"BLOCK_N": 32, "num_warps": 4},
           "int_args": {"C_out": 128}}, open(record, "w"))
'''


def test_child_backend_measure_judges_the_child_and_reads_the_pin_record(tmp_path):
    python = tmp_path / "python"
    python.write_text(STAND_IN_PYTHON)
    python.chmod(0o755)
    backend = ChildBackend(
        tmp_path / "k.py",
        "ModelNew_seed001",
        "conv2d_scale_min_kernel",
        tmp_path / "run",
        ProfileOptions(python=str(python), timeout_s=60),
    )
    start = backend.measure(None)
    assert start.usable and start.median_ms == 40.0 and start.n_regs == 132
    assert start.launched_with == {"BLOCK_N": 32, "num_warps": 4} and start.int_args == {"C_out": 128}
    wide = backend.measure(TuneConfig.make({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32}, 4, 2))
    assert wide.median_ms == 10.0 and wide.n_regs == 228
    failed = backend.measure(TuneConfig.make({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32}, 4, 2))
    assert failed.status == "failed" and "OutOfResources" in failed.reason and not failed.usable
    assert sorted(p.name for p in (tmp_path / "run" / "trials").iterdir()) == ["000", "001", "002"]
    assert json.loads((tmp_path / "run" / "trials" / "001" / "command.json").read_text())[0] == str(python)


def test_child_backend_profile_with_an_unreadable_report_falls_back(tmp_path, monkeypatch):
    broken = tmp_path / "broken.ncu-rep"
    broken.write_bytes(b"not a report")
    monkeypatch.setenv("FAKE_NCU_REPORT", str(broken))
    backend = ChildBackend(
        tmp_path / "k.py",
        "ModelNew_seed001",
        "conv2d_scale_min_kernel",
        tmp_path,
        ProfileOptions(timeout_s=60),
        ncu=FAKE_NCU,
        metrics=["launch__registers_per_thread"],
    )
    from ncu_advisor.collect.tune.loop import Measurement

    config = TuneConfig.make({"BLOCK_N": 128}, 4, 2)
    assert backend.profile(config, Measurement("ok", [1.0], True)) is None
