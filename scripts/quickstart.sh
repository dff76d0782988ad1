#!/usr/bin/env bash
# The main job, from a fresh clone: install mlxcore (into the clone's .venv, or the active virtual
# environment: see scripts/venv.sh), run the quickstart sweep (12 runs: 2 learning rates x 2 momentums x
# 3 seeds) through the local pool, two at a time; re-issue it with skip_completed (nothing is left to run);
# then show the status table, the answer averaged over seeds (the DuckDB reader) and a plot, and write the HTML
# report (one self-contained file: open it in any browser, no network needed).
# Run it again: nothing is reinstalled and the runs already COMPLETE are skipped, so it only re-reads and
# re-answers.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
mlxcore_venv
mlxcore_install quickstart -- "$MLXCORE_ROOT/pyproject.toml" -- -e "$MLXCORE_ROOT[plot,report]"
PY=$MLXCORE_PY
cd "$MLXCORE_ROOT/examples/quickstart"

sweep=(optimizer.lr=0.01,0.05 optimizer.momentum=0,0.9 seed=1,2,3
       +mlx.use_scheduler=true +mlx.scheduler.workers=2 +mlx.skip_completed=true)
echo "== the sweep: 12 runs through the local pool, 2 at a time"
"$PY" main.py "${sweep[@]}"
echo "== the same command again: every point is COMPLETE, nothing runs"
"$PY" main.py "${sweep[@]}"

echo "== mlxcore status logs --metric train.loss"
"$PY" -m mlxcore status logs --metric train.loss

echo "== which optimizer settings won, averaged over seeds (final training loss)?"
"$PY" - <<'PY'
import mlxcore

reader = mlxcore.Reader("logs")
summary = reader.compare(group_by=["config.optimizer.lr", "config.optimizer.momentum"], metric="train.loss",
                         reduce="last")
print(summary.sort_values("mean").to_string(index=False))
PY

echo "== mlxcore plot: one curve per setting, mean and std band over the seeds"
"$PY" -m mlxcore plot logs --metric train.loss --x epoch \
    --group-by config.optimizer.lr,config.optimizer.momentum --logy -o curves.png
echo "== mlxcore report: runs, curves, failures and totals in one HTML file"
"$PY" -m mlxcore report logs --metric train.loss --x epoch \
    --group-by config.optimizer.lr,config.optimizer.momentum --logy -o report.html
echo "quickstart: logs in examples/quickstart/logs, plot in examples/quickstart/curves.png"
echo "quickstart: mlxcore is installed in $("$PY" -c 'import sys; print(sys.prefix)');" \
    "activate it (source .../bin/activate) to use the mlxcore command"
echo "quickstart: report in $(pwd)/report.html (open it in a browser: one file, no network needed)"
