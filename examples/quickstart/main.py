"""Quickstart: a tiny least-squares "training" that logs metrics and a resumable checkpoint.

    python main.py                                   # one run, logs/1
    python main.py optimizer.lr=0.01,0.1 seed=1,2,3  # a sweep of six runs
    python main.py optimizer.lr=0.01,0.05 optimizer.momentum=0,0.9 seed=1,2,3 \
        +mlx.use_scheduler=true +mlx.scheduler.workers=2    # twelve runs, two at a time
    python main.py +mlx.logger.forced_log_id=3       # resume run 3 from its last checkpoint
    python main.py optimizer.lr='tag(log, interval(0.001, 0.1))' optimizer.momentum='interval(0, 0.9)' \
        +mlx.sweeper.name=optuna +mlx.sweeper.metric=train.loss +mlx.sweeper.pruner=median  # a search (mlxcore-optuna)
"""

import random

import mlxcore


def set_seeds(seed):
    random.seed(seed)


@mlxcore.launch(config_path="./configs", seeding_function=set_seeds)
def train(ctx: mlxcore.Context) -> None:
    cfg = ctx.config
    # a noisy 1-d regression y = 3x + 1, fitted by stochastic gradient descent
    data = [(x / 10, 3 * x / 10 + 1 + random.gauss(0, 0.1)) for x in range(-20, 20)]
    start = {"w": 0.0, "b": 0.0, "vw": 0.0, "vb": 0.0, "epoch": -1}
    state = ctx.logger.load_checkpoint("last_ckpt", default=None) or start
    lr, momentum = cfg.optimizer.lr, cfg.optimizer.momentum
    for epoch in range(state["epoch"] + 1, cfg.num_epoch):
        random.shuffle(data)
        for x, y in data:
            err = state["w"] * x + state["b"] - y
            state["vw"] = momentum * state["vw"] + err * x
            state["vb"] = momentum * state["vb"] + err
            state["w"] -= lr * state["vw"]
            state["b"] -= lr * state["vb"]
        loss = sum((state["w"] * x + state["b"] - y) ** 2 for x, y in data) / len(data)
        ctx.logger.log_metrics({"loss": loss, "epoch": epoch}, log_name="train")
        ctx.logger.log_checkpoint({**state, "epoch": epoch}, log_name="last_ckpt")
        if ctx.trial is not None:  # in a search: tell the pruner, which may stop a hopeless trial early
            ctx.trial.report(loss, epoch)
            if ctx.trial.should_prune():
                raise mlxcore.TrialPruned(f"epoch {epoch}: loss {loss:.4g}")
        if ctx.should_stop:  # the scheduler asked us to stop: the checkpoint is saved, return
            return


if __name__ == "__main__":
    train()
