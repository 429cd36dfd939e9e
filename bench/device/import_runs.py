"""Copy run directories recorded on the GPU machine into examples/runs/, gzipping each .ncu-rep.

Usage: python bench/device/import_runs.py SRC_RUNS_DIR DEST_DIR
The manifests' report paths are rewritten to the .gz names (the reader opens .ncu-rep.gz directly), and the
tables are rebuilt from the reports (``rundir.finalize``) when the recording machine did not write them.
"""

import gzip
import json
import shutil
import sys
from pathlib import Path

from ncu_advisor import rundir

src_root, dest_root = Path(sys.argv[1]), Path(sys.argv[2])
for src in sorted(p for p in src_root.iterdir() if rundir.is_run_dir(p)):
    dest = dest_root / src.name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    for rep in dest.rglob("*.ncu-rep"):
        with open(rep, "rb") as fin, gzip.open(rep.with_name(rep.name + ".gz"), "wb", compresslevel=9) as fout:
            shutil.copyfileobj(fin, fout)
        rep.unlink()
    manifest = json.loads((dest / rundir.MANIFEST_NAME).read_text())
    for entry in [manifest.get("reference") or {}, *manifest.get("variants", {}).values()]:
        logs = entry.get("logs") or {}
        if logs.get("report", "").endswith(".ncu-rep"):
            logs["report"] += ".gz"
    rundir.write_manifest(dest, manifest)
    if not (dest / rundir.METRICS_CSV).exists():
        print(src.name, "tables:", rundir.finalize(dest))
    print(src.name, "->", dest)
