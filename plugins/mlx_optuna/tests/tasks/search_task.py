"""The task of the mlx_optuna tests, driven by its config's ``mode``:

- ``quad``: logs ``train.loss = (x-2)**2 + (y+1)**2`` once (the search's optimum is x=2, y=-1);
- ``curve``: ``epochs`` epochs of ``loss = offset + 1/(epoch+1)``, each reported to ``ctx.trial`` (pruned when
  the pruner says so);
- ``resume``: like ``curve`` with a checkpoint per epoch, resumed from it; trial ``block_trial`` writes
  ``<number> <log id>`` to ``marker_file`` and blocks at epoch ``block_epoch`` while the file ``block_file`` exists
  (the test kills the launcher meanwhile), or until a stop signal (then it returns: PREEMPTED);
- ``fail``: raises while the file ``fail_file`` exists (a flaky trial), or always when it is empty;
- ``silent``: ends COMPLETE without logging the metric;
- ``give_up``: logs the metric once, then raises Optuna's own ``optuna.TrialPruned`` (without ever reporting).
"""

import os
import time

import mlxcore


@mlxcore.launch(config_path="./configs")
def main(ctx):
    cfg = ctx.config
    mode = cfg.mode
    if mode == "quad":
        ctx.logger.log_metrics({"loss": (cfg.x - 2) ** 2 + (cfg.y + 1) ** 2}, log_name="train")
    elif mode in ("curve", "resume"):
        state = ctx.logger.load_checkpoint("ckpt", default={"epoch": -1}) if mode == "resume" else {"epoch": -1}
        for epoch in range(state["epoch"] + 1, cfg.epochs):
            if mode == "resume" and epoch == cfg.block_epoch and ctx.trial.number == cfg.block_trial:
                with open(cfg.marker_file, "a") as handle:
                    handle.write(f"{ctx.trial.number} {ctx.info['log_id']}\n")
                while os.path.exists(cfg.block_file) and not ctx.should_stop:
                    time.sleep(0.02)  # not a wait of the test: the trial is held until the launcher is killed
                if ctx.should_stop:  # a stop signal: the checkpoint is saved, the run ends PREEMPTED
                    return
            loss = cfg.offset + 1.0 / (epoch + 1)
            ctx.logger.log_metrics({"loss": loss, "epoch": epoch}, log_name="train")
            if mode == "resume":
                ctx.logger.log_checkpoint({"epoch": epoch}, log_name="ckpt")
            ctx.trial.report(loss, epoch)
            if ctx.trial.should_prune():
                raise mlxcore.TrialPruned()
    elif mode == "fail":
        if not cfg.fail_file or os.path.exists(cfg.fail_file):
            if cfg.fail_file:
                os.remove(cfg.fail_file)  # fails once: the retry succeeds
            raise RuntimeError(f"trial with x={cfg.x} fails")
        ctx.logger.log_metrics({"loss": float(cfg.x)}, log_name="train")
    elif mode == "give_up":
        import optuna

        ctx.logger.log_metrics({"loss": 1.0}, log_name="train")
        raise optuna.TrialPruned("given up")
    elif mode == "silent":
        ctx.logger.log_metrics({"other": 1.0}, log_name="train")


if __name__ == "__main__":
    main()
