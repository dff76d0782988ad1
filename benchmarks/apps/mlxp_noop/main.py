"""No-op MLXP task (run with benchmarks/.venv-mlxp/bin/python); the same body as the mlxcore app."""

import os
import time

import mlxp


@mlxp.launch(config_path="./configs")
def main(ctx):
    stamps = os.environ.get("BENCH_STAMPS")
    if stamps:
        with open(stamps, "a") as handle:
            handle.write(f"{time.time()!r}\n")


if __name__ == "__main__":
    main()
