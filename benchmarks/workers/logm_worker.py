"""Times ``log_metrics`` against a buffered ``f.write(json.dumps(d) + "\\n")`` loop, rounds interleaved, in one
process. Run by the main interpreter (``--impl mlxcore``) or MLXP's venv (``--impl mlxp``); prints JSON.

    python logm_worker.py --impl mlxcore --rounds 5 --calls 50000 --dir DIR
"""

import argparse
import json
import os
import sys
import time


def rows(n):
    for i in range(n):
        yield {"step": i, "loss": 1.0 / (i + 1), "accuracy": i * 1e-5, "lr": 0.01}


def floor_round(path, n):
    start = time.perf_counter()
    with open(path, "a") as f:
        for d in rows(n):
            f.write(json.dumps(d) + "\n")
    return time.perf_counter() - start


def mlxcore_round(parent, n):
    import mlxcore

    run = mlxcore.open_run(parent)  # the background flush thread runs, as in a real run
    log_metrics = run.logger.log_metrics
    start = time.perf_counter()
    for d in rows(n):
        log_metrics(d, "train")
    run.logger.close()  # the last write is part of the cost
    elapsed = time.perf_counter() - start
    run.finish("COMPLETE")
    return elapsed, str(run.run.paths.stream("train"))


def mlxp_round(parent, n):
    from mlxp.logger import DefaultLogger

    logger = DefaultLogger(parent_log_dir=parent, forced_log_id=-1)
    log_metrics = logger.log_metrics
    start = time.perf_counter()
    for d in rows(n):
        log_metrics(d, "train")
    elapsed = time.perf_counter() - start
    return elapsed, os.path.join(logger.log_dir, "metrics", "train.json")


def check(path, n):
    with open(path) as f:
        lines = f.read().splitlines()
    if len(lines) != n or json.loads(lines[-1])["step"] != n - 1:
        sys.exit(f"{path}: {len(lines)} lines, expected {n}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["mlxcore", "mlxp"], required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50000)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    candidate = mlxcore_round if args.impl == "mlxcore" else mlxp_round
    os.makedirs(args.dir, exist_ok=True)
    out = {"impl": [], "floor": []}
    candidate(os.path.join(args.dir, "warmup"), 1000)  # imports and first-call costs, untimed
    for r in range(args.rounds):
        order = ("impl", "floor") if r % 2 == 0 else ("floor", "impl")
        for which in order:
            if which == "impl":
                elapsed, path = candidate(os.path.join(args.dir, "logs"), args.calls)
            else:
                path = os.path.join(args.dir, f"floor-{os.getpid()}-{r}.json")
                elapsed = floor_round(path, args.calls)
            check(path, args.calls)
            out[which].append(elapsed)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
