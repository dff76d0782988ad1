"""A task for the core tests, driven by its config: ``mode`` = ok | fail | fail_if | flaky | sleep | resume | stop |
print | gpu | remove_script | exit."""

import os
import sys
import time

import mlxcore

SEEDS = []


def record_seed(seed):
    SEEDS.append(seed)


@mlxcore.launch(config_path="./configs", seeding_function=record_seed)
def main(ctx):
    cfg = ctx.config
    ctx.logger.log_metrics({"seed_seen": SEEDS[-1], "x": cfg.get("x")}, log_name="setup")
    mode = cfg.get("mode", "ok")
    if mode == "fail" or (mode == "fail_if" and cfg.x == cfg.fail_at):
        raise ValueError(f"boom at x={cfg.get('x')}")
    if mode == "flaky" and os.path.exists(f"flaky-{cfg.x}"):  # fails while the flag file is in the work directory
        raise RuntimeError(f"flaky-{cfg.x} exists")
    if mode == "exit":  # the task ends the process itself
        sys.exit(cfg.get("code", 0))
    if mode == "remove_script" and cfg.x == 1:  # later jobs of the sweep find no script to run
        os.remove(sys.argv[0])
    if mode == "gpu":  # what the pool handed out, and when this run held it
        start = time.time()
        time.sleep(float(cfg.get("sleep", 0.5)))  # not a wait: the run holds its GPUs for a while
        ctx.logger.log_metrics({"cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "t0": start, "t1": time.time()},
                               log_name="gpu")
    if mode == "sleep":  # log rows, then wait to be signalled
        for step in range(5):
            ctx.logger.log_metrics({"step": step}, log_name="train")
        print("ready", flush=True)
        time.sleep(float(cfg.get("sleep", 60)))  # not a wait: a slow task, which the test signals meanwhile
    if mode == "resume":  # continue from the last checkpoint, stop after `stop_after` epochs
        state = ctx.logger.load_checkpoint("ckpt", default={"epoch": -1})
        for epoch in range(state["epoch"] + 1, cfg.epochs):
            ctx.logger.log_metrics({"epoch": epoch}, log_name="train")
            ctx.logger.log_checkpoint({"epoch": epoch}, log_name="ckpt")
            if epoch == cfg.get("stop_after", -1):
                raise RuntimeError("simulated crash")
    if mode == "stop":  # wait for a stop signal, checkpoint and return
        from mlxcore.testing import wait_until  # here: it imports pytest, which the other modes need not load

        print("ready", flush=True)
        wait_until(lambda: ctx.should_stop, timeout=30, interval=0.01, what="a stop signal")
        if cfg.get("checkpoint", True):
            ctx.logger.log_checkpoint({"stopped": True}, log_name="ckpt")
    if mode == "print":
        print("to stdout")
        print("to stderr", file=sys.stderr)
        os.system("echo from a child process")
    ctx.logger.log_metrics({"done": 1}, log_name="end")


if __name__ == "__main__":
    main()
