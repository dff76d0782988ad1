"""``log_metrics`` throughput against a buffered JSON-lines writer (goal: within 1.5x).

A worker process (``workers/logm_worker.py``) alternates rounds of N calls of ``logger.log_metrics(d,
"train")`` on a real run (``FileLogger``, background flush thread running, the final write included) with
rounds of ``f.write(json.dumps(d) + "\\n")`` on a file opened once (the floor), the same 4-key rows. MLXP's
``DefaultLogger.log_metrics`` is timed the same way in its venv, against the same floor there; workers of
both kinds alternate. Figures are microseconds per call (calls/s in the notes).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import MLXP_PY, PY, WORKERS, Figure, bench_main, median, scratch

DEFAULT_REPEATS = 15
CALLS = 50_000
MLXP_CALLS = 10_000  # MLXP opens and closes the file on every call: fewer calls, the same per-call figure
CHUNKS = 3  # worker processes per implementation, alternating


def _worker(python: str, impl: str, rounds: int, calls: int, directory: Path) -> dict[str, list[float]]:
    argv = [python, str(WORKERS / "logm_worker.py"), "--impl", impl, "--rounds", str(rounds),
            "--calls", str(calls), "--dir", str(directory)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{impl} worker failed:\n{proc.stderr[-2000:]}")
    times = json.loads(proc.stdout.strip().splitlines()[-1])
    return {k: [t * 1e6 / calls for t in v] for k, v in times.items()}  # µs per call


def run(repeats: int = DEFAULT_REPEATS, with_mlxp: bool = False) -> list[Figure]:
    out = scratch("log_metrics")
    per_chunk = max(1, -(-repeats // CHUNKS))
    got: dict[str, list[float]] = {"mlxcore": [], "floor": [], "mlxp": [], "mlxp floor": []}
    for chunk in range(CHUNKS):
        res = _worker(PY, "mlxcore", per_chunk, CALLS, out / f"mlxcore-{chunk}")
        got["mlxcore"] += res["impl"]
        got["floor"] += res["floor"]
        if with_mlxp:
            res = _worker(MLXP_PY, "mlxp", max(1, per_chunk // 2), MLXP_CALLS, out / f"mlxp-{chunk}")
            got["mlxp"] += res["impl"]
            got["mlxp floor"] += res["floor"]
    med = {k: median(v) for k, v in got.items() if v}
    ratio = med["mlxcore"] / med["floor"]
    note = (f"calls/s: mlxcore {1e6 / med['mlxcore']:,.0f}, floor {1e6 / med['floor']:,.0f}"
            + (f"; MLXP {1e6 / med['mlxp']:,.0f}, its floor {1e6 / med['mlxp floor']:,.0f}" if with_mlxp else "")
            + f"; {CALLS:,} calls a round"
            + (f" ({MLXP_CALLS:,} for MLXP, {len(got['mlxp'])} rounds)" if with_mlxp else ""))
    return [Figure("log_metrics", "log_metrics, time per call", "us", med["mlxcore"], med["floor"],
                   "buffered f.write(json.dumps(d)+'\\n')", med.get("mlxp"), med.get("mlxp floor"),
                   goal="within 1.5x of the floor", met=ratio <= 1.5, repeats=len(got["mlxcore"]), note=note)]


def main(argv: list[str] | None = None) -> list[Figure]:
    return bench_main("log_metrics", "log_metrics throughput", run, DEFAULT_REPEATS, argv)


if __name__ == "__main__":
    main()
