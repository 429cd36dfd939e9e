"""The tune child wrapper and the child backend's command line (no torch: the profile child's main is a
stand-in)."""

from __future__ import annotations

import json
from pathlib import Path

from ncu_advisor.profile import child as profile_child
from ncu_advisor.profile.runner import CHILD_MODULE, ProfileOptions
from ncu_advisor.tune import child as tune_child
from ncu_advisor.tune.loop import TUNE_CHILD_MODULE, ChildBackend
from ncu_advisor.tune.space import TuneConfig

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
