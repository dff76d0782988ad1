"""A bare ``@hydra.main`` app doing nothing (hydra's defaults: output dir, .hydra/ files, log file)."""

import os
import time

import hydra


@hydra.main(config_path="configs", config_name="config", version_base=None)
def main(cfg):
    stamps = os.environ.get("BENCH_STAMPS")
    if stamps:
        with open(stamps, "a") as handle:
            handle.write(f"{time.time()!r}\n")


if __name__ == "__main__":
    main()
