"""A task for the fault-injection tests (``tests/test_faults.py``), driven by its config's ``mode``:

- ``storm``: continue from checkpoint ``ckpt``, log ``steps`` rows ``{"step", "pid", "w"}`` to stream ``train`` and
  save the checkpoint every ``ckpt_every`` steps. Before its first row it writes ``<journal>/<pid>`` (the run's id):
  the test learns which process writes which run, and when the process is busy writing;
- ``fill``: log ``rows`` rows of about 300 bytes in two halves, waiting between them for the test (which fills the
  disk) and before returning (the test frees space or not), through flag files in ``flags``;
- ``sleep``: log 5 rows, print ``ready``, sleep.

``python fault_app.py open_run LOGS [LOG_ID]`` runs the ``storm`` loop through ``mlxcore.open_run`` instead of a
launch, with the config and settings of ``configs/config.yaml`` and ``configs/mlx.yaml`` (the config a launched
run records, so either kind of process can resume a run made by the other). There SIGTERM raises
KeyboardInterrupt, as a script of one's own would arrange (a launch does it itself).
"""

import os
import signal
import sys
import time
from pathlib import Path


def _interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


if sys.argv[1:2] == ["open_run"]:
    signal.signal(signal.SIGTERM, _interrupt)

import mlxcore  # noqa: E402 - after the handler: the imports take most of the start-up


def storm(logger, cfg) -> None:
    state = logger.load_checkpoint("ckpt", default={"step": -1, "blob": ""})
    pid = os.getpid()
    journal = Path(cfg["journal"])
    (journal / f".{pid}").write_text(str(logger.log_id))
    os.replace(journal / f".{pid}", journal / str(pid))  # whole, never read half-written
    for step in range(state["step"] + 1, cfg["steps"]):
        logger.log_metrics({"step": step, "pid": pid, "w": "x" * cfg["pad"]}, log_name="train")
        if step % cfg["ckpt_every"] == 0:
            logger.log_checkpoint({"step": step, "blob": checkpoint_blob(step, cfg["ckpt_pad"])}, log_name="ckpt")
        time.sleep(cfg["sleep"])  # not a wait: the task's pace, so that the storm's signals land mid-run


def checkpoint_blob(step: int, size: int) -> str:
    """What the checkpoint of ``step`` holds besides the step: the test recomputes it to tell a torn value."""
    unit = f"{step}:"
    return unit * (size // len(unit) + 1)


def fill(logger, cfg) -> None:
    from mlxcore.testing import wait_until  # here: it imports pytest, which the other modes need not load

    flags = Path(cfg["flags"])
    rows = cfg["rows"]
    for step in range(rows):
        if step == rows // 2:
            logger.flush()  # the first half is on disk
            (flags / "half").touch()
            wait_until((flags / "go").exists, timeout=60, what="the test to fill the disk")
        logger.log_metrics({"step": step, "w": "w" * 280}, log_name="train")
    time.sleep(0.5)  # not a wait: the time for several flushes (every 0.05 s) to fail (a full disk) or succeed
    (flags / "logged").touch()
    wait_until((flags / "release").exists, timeout=60, what="the test to free space, or not")


@mlxcore.launch(config_path="./configs")
def main(ctx) -> None:
    cfg = ctx.config
    if cfg.mode == "storm":
        storm(ctx.logger, cfg)
    elif cfg.mode == "fill":
        fill(ctx.logger, cfg)
    elif cfg.mode == "sleep":
        for step in range(5):
            ctx.logger.log_metrics({"step": step}, log_name="train")
        print("ready", flush=True)
        time.sleep(float(cfg.get("sleep", 60)))  # not a wait: a slow task, which the test signals meanwhile
    else:
        raise ValueError(f"unknown mode {cfg.mode!r}")


def open_run_main(logs: str, log_id: str | None) -> None:
    import yaml

    configs = Path(__file__).parent / "configs"
    config = yaml.safe_load((configs / "config.yaml").read_text())
    mlx = yaml.safe_load((configs / "mlx.yaml").read_text()) if (configs / "mlx.yaml").exists() else None
    with mlxcore.open_run(logs, config=config, log_id=int(log_id) if log_id else None, mlx=mlx) as run:
        storm(run.logger, config)


if __name__ == "__main__":
    if sys.argv[1:2] == ["open_run"]:
        open_run_main(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    else:
        main()
