"""MLXP's side of the reader benchmark: the same data written by MLXP's own logger, and MLXP's reader timed in
its own venv (``benchmarks/.venv-mlxp``, :mod:`benchmarks.mlxp_env`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from benchmarks.common import MLXP_PY

MLXP_QUERY = "config.optimizer.lr <= 0.01"  # MLXP's language has no scientific notation and no metric predicate

MLXP_WRITE = r'''
import json, os, sys, yaml
from omegaconf import OmegaConf
from mlxp.logger import DefaultLogger
src, dst = sys.argv[1], sys.argv[2]
for log_id in sorted(int(n) for n in os.listdir(src) if n.isdigit()):
    run = os.path.join(src, str(log_id))
    logger = DefaultLogger(parent_log_dir=dst, forced_log_id=-1)
    with open(os.path.join(run, "metadata", "config.yaml")) as f:
        logger._log_configs(OmegaConf.create(yaml.safe_load(f)))
    info = {"status": "COMPLETE", "logger": logger.get_info()}
    logger._log_configs(OmegaConf.create(info), "info")
    for name in sorted(os.listdir(os.path.join(run, "metrics"))):
        with open(os.path.join(run, "metrics", name)) as f:
            for line in f:
                logger.log_metrics(json.loads(line), log_name=name[:-len(".json")])
'''
MLXP_READ = r'''
import json, sys, time
start = time.perf_counter()
from mlxp import Reader
imported = time.perf_counter()
reader = Reader(sys.argv[1], dst_dir=sys.argv[2], refresh=True)
found = reader.filter(sys.argv[3])
done = time.perf_counter()
print(json.dumps({"import": imported - start, "end_to_end": done - imported, "runs": len(found)}))
'''


MLXP_WARM = r'''
import json, statistics, sys, time
from mlxp import Reader
logs, db, query, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
Reader(logs, dst_dir=db, refresh=False).filter(query)  # warm up, as mlxcore's candidates are
reopen, both = [], []
for _ in range(repeats):
    start = time.perf_counter()
    reader = Reader(logs, dst_dir=db, refresh=False)
    opened = time.perf_counter()
    reader.filter(query)
    done = time.perf_counter()
    reopen.append(opened - start)
    both.append(done - start)
print(json.dumps({"reopen": statistics.median(reopen), "reopen_filter": statistics.median(both)}))
'''


def mlxp_warm(logs: Path, repeats: int) -> dict[str, float]:
    """MLXP's reopen without refresh, and with a filter, in one process over the database of its last refresh."""
    out = subprocess.run([MLXP_PY, "-c", MLXP_WARM, str(logs), str(logs.parent / "db"), MLXP_QUERY, str(repeats)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def mlxp_corpus(logs: Path) -> Path:
    """The same configs and metric rows, written by MLXP's own logger in its venv (once)."""
    root = logs.parent / "mlxp"
    if not (root / "complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run([MLXP_PY, "-c", MLXP_WRITE, str(logs), str(root / "logs")], check=True, capture_output=True)
        (root / "complete").touch()
        print(f"MLXP corpus written by MLXP's logger in {time.perf_counter() - started:.0f} s", flush=True)
    return root / "logs"


def mlxp_end_to_end(logs: Path, repeats: int) -> tuple[list[float], int]:
    """MLXP ``Reader(...)`` (it rebuilds its database) + ``filter``; its import is not counted."""
    times, runs = [], 0
    db = logs.parent / "db"
    for _ in range(repeats):
        shutil.rmtree(db, ignore_errors=True)
        db.mkdir()
        out = subprocess.run([MLXP_PY, "-c", MLXP_READ, str(logs), str(db), MLXP_QUERY], check=True,
                             capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        times.append(result["end_to_end"])
        runs = result["runs"]
    return times, runs
