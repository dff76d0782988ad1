"""A test task for the SLURM plugin, driven by ``mode``: ok | fail | sleep | preempt."""

import os
import time

import mlxcore


@mlxcore.launch(config_path="./configs")
def main(ctx):
    cfg = ctx.config
    ctx.logger.log_metrics({"x": cfg.x, "job_id": os.environ.get("SLURM_JOB_ID"),
                            "greeting": os.environ.get("GREETING")}, log_name="train")
    if cfg.mode == "fail":
        raise ValueError(f"failing on purpose at x={cfg.x}")
    if cfg.mode == "sleep":  # ignores stop requests: runs until killed
        print("ready", flush=True)
        time.sleep(cfg.sleep)
    if cfg.mode == "preempt":  # first attempt: work until asked to stop, checkpoint; resumed: finish
        state = ctx.logger.load_checkpoint("ckpt", default={"step": 0, "attempts": 0})
        state["attempts"] += 1
        ctx.logger.log_metrics({"attempt": state["attempts"], "start_step": state["step"],
                                "restart_count": os.environ.get("SLURM_RESTART_COUNT")}, log_name="attempts")
        ctx.on_stop(lambda: print(f"on_stop called at step {state['step']}", flush=True))
        print("ready", flush=True)
        deadline = time.time() + (cfg.sleep if state["attempts"] == 1 else 0.5)  # a resumed attempt finishes
        while time.time() < deadline:
            state["step"] += 1
            time.sleep(0.01)
            if ctx.should_stop:
                ctx.logger.log_checkpoint(state, log_name="ckpt")
                return
        ctx.logger.log_checkpoint(state, log_name="ckpt")
    ctx.logger.log_metrics({"done": 1}, log_name="end")


if __name__ == "__main__":
    main()
