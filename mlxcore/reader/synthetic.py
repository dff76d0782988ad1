"""Logs directories written in-process through the real ``files`` logger, without launching a task.

For the reader's tests and benchmark (thousands of runs in seconds) and for trying queries: every file is
written by :class:`~mlxcore.loggers.files.FileLogger` exactly as a launched run writes it (metadata through
``write_metadata``/``start``/``finish``, metric rows through ``log_metrics``), so the reader sees the real
layout, the real YAML and the real JSON lines.
"""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Any

from .. import store
from ..settings import LoggerSettings, Settings

LEARNING_RATES = (1e-3, 1e-2, 1e-1)
DEPTHS = (2, 4, 8, 16)


def write_run(parent: Path | str, config: dict[str, Any], streams: dict[str, list[dict[str, Any]]] | None = None,
              status: str = store.COMPLETE, overrides: list[str] | None = None) -> int:
    """Write one run under ``parent`` and return its log id.

    :param streams: ``{log_name: rows}``, each row logged with ``log_metrics``.
    :param status: the final status; ``SUBMITTED`` writes a run that a scheduler has not started (no metrics).
    """
    from ..session import process_info, start_run
    from ..store import RunStore, layout

    settings = Settings(logger=LoggerSettings(parent_log_dir=str(parent)))
    runs = RunStore(settings.log_dir_root)
    if status == store.SUBMITTED:
        run, _ = runs.create(store.SUBMITTED, {"overrides": overrides or [], "submit_time": store.now_iso()},
                             {layout.CONFIG: config, layout.SETTINGS: settings.to_dict()})
        return run.log_id
    info = {**process_info(overrides or []), "overrides": overrides or []}
    session = start_run(runs, settings, info, config)
    try:
        for log_name, rows in (streams or {}).items():
            for row in rows:
                session.logger.log_metrics(row, log_name=log_name)
    finally:
        session.finish(status)
    return session.log_id


def training_rows(lr: float, seed: int, rows: int, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """A ``train`` stream (``epoch``, ``loss``, ``acc``) decaying with ``lr``, and a ``test`` stream every 10."""
    noise = 0.01 * (1 + seed % 3)
    train = [{"epoch": e, "loss": math.exp(-lr * e) + noise * rng.random(), "acc": 1 - math.exp(-lr * e) / 2}
             for e in range(rows)]
    test = [{"epoch": e, "accuracy": 1 - math.exp(-lr * e) / 2 - noise * rng.random()} for e in range(0, rows, 10)]
    return {"train": train, "test": test}


def build_corpus(parent: Path | str, n_runs: int, n_rows: int, seeds: int = 5, seed: int = 0) -> list[int]:
    """``n_runs`` completed runs over a grid of learning rates, depths and seeds, ``n_rows`` train rows each."""
    rng = random.Random(seed)
    ids = []
    for n in range(n_runs):
        lr, depth, run_seed = LEARNING_RATES[n % 3], DEPTHS[(n // 3) % 4], (n // 12) % seeds
        config = {"seed": run_seed, "optimizer": {"name": "sgd", "lr": lr}, "model": {"depth": depth}}
        ids.append(write_run(parent, config, training_rows(lr, run_seed, n_rows, rng),
                             overrides=[f"optimizer.lr={lr}", f"+model.depth={depth}", f"seed={run_seed}"]))
    return ids


def backdate(parent: Path | str, seconds: float = 30.0) -> None:
    """Move every mtime under ``parent`` newer than ``seconds`` ago back to then, as if the runs had been written
    a while ago; older ones are left alone, so backdating twice changes nothing the first call did.

    The catalog re-reads a run whose files changed within the last two seconds at every refresh (a change in the
    same timestamp tick could otherwise be missed); tests that count re-read runs backdate what they wrote. The
    default stays under the 60 s after which a live run's heartbeat would look stale.
    """
    stamp = time.time() - seconds
    for directory, _, files in os.walk(parent):
        for path in [*(os.path.join(directory, name) for name in files), directory]:
            if os.stat(path).st_mtime > stamp:
                os.utime(path, (stamp, stamp))
