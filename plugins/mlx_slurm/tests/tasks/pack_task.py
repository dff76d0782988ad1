"""A task for the packing tests: point ``x`` holds when it is in ``hold`` (works until stopped, then checkpoints
and returns; its resumed attempt finishes at once), any other point ends at once. Each attempt logs a row."""

import os
import time

import mlxcore


@mlxcore.launch(config_path="./pack_configs")
def main(ctx):
    cfg = ctx.config
    state = ctx.logger.load_checkpoint("ckpt", default={"attempts": 0, "step": 0})
    state["attempts"] += 1
    ctx.logger.log_metrics({"x": cfg.x, "attempt": state["attempts"], "start_step": state["step"],
                            "job_id": os.environ.get("SLURM_JOB_ID"),
                            "restart_count": os.environ.get("SLURM_RESTART_COUNT"),
                            "cpus": os.environ.get("MLXCORE_CPUS")}, log_name="attempts")
    print(f"ready {cfg.x}", flush=True)
    if cfg.x in cfg.hold and state["attempts"] == 1:
        deadline = time.time() + cfg.sleep
        while time.time() < deadline and not ctx.should_stop:
            state["step"] += 1
            time.sleep(0.05)
        ctx.logger.log_checkpoint(state, log_name="ckpt")
        if ctx.should_stop:
            return
    ctx.logger.log_metrics({"done": 1}, log_name="end")


if __name__ == "__main__":
    main()
