"""A test task for the SLURM plugin, driven by ``mode``: ok | fail | sleep | preempt | work | hog."""

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
    if cfg.mode == "work":  # `work` seconds of steps in all, saved every second (with `checkpoint`), until stopped
        state = ctx.logger.load_checkpoint("ckpt", default={"done": 0.0, "attempts": 0})
        state["attempts"] += 1
        ctx.logger.log_metrics({"attempt": state["attempts"], "start_done": state["done"]}, log_name="attempts")
        saved = time.time()
        while state["done"] < cfg.work:
            time.sleep(0.1)
            state["done"] += 0.1
            if cfg.checkpoint and (ctx.should_stop or time.time() - saved >= 1):
                ctx.logger.log_checkpoint(state, log_name="ckpt")
                saved = time.time()
            if ctx.should_stop:
                return
    if cfg.mode == "hog":  # hold `hog` MB (every page written) for a moment: over its --mem, the kernel kills it
        ctx.logger.log_metrics({"mem": os.environ.get("SLURM_MEM_PER_NODE"), "job_id": os.environ.get("SLURM_JOB_ID"),
                                "because": os.environ.get("MLXCORE_STARTED_BECAUSE")}, log_name="attempts")
        block = bytearray(b"\x01") * (cfg.hog * 1024 * 1024)
        time.sleep(0.5)
        del block
    ctx.logger.log_metrics({"done": 1}, log_name="end")


if __name__ == "__main__":
    main()
