"""``mlxcore report`` without a browser: its size on 1,000 runs x 1,000 rows, its one-line errors (and no report
file, not even half of one, when it fails), the band on log axes, and that ``import mlxcore`` stays light.

The logs are written by the real logger (``mlxcore.reader.synthetic``); the command runs in a subprocess.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlxcore.reader.synthetic import build_corpus, write_run

if os.environ.get("CI") != "true":  # under CI the test extra has installed it: a missing Bokeh fails
    pytest.importorskip("bokeh")


def report(logs: Path, output: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlxcore", "report", str(logs), "-o", str(output), *args],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    logs = tmp_path_factory.mktemp("small") / "logs"
    for seed in (1, 2):
        for lr in (0.1, 0.01):
            write_run(logs, {"seed": seed, "lr": lr}, {"train": [{"epoch": e, "loss": 1 / (1 + lr * e)}
                                                                 for e in range(5)]})
    return logs


def test_1000_runs_of_1000_rows_stay_under_5_mb(tmp_path):
    logs = tmp_path / "logs"
    build_corpus(logs, n_runs=1000, n_rows=1000)
    output = tmp_path / "report.html"
    done = report(logs, output, "--metric", "train.loss", "--x", "epoch", "--group-by", "config.optimizer.lr",
                  "--group-by", "config.model.depth")
    assert done.returncode == 0, done.stderr
    assert "1000 run(s), 12 curve(s)" in done.stdout
    size = output.stat().st_size
    assert size < 5_000_000, size
    text = output.read_text()
    assert "are downsampled" not in text  # 1,000 x-values in 12 curves fit the budget
    # the worst case: one curve per run, 1,000 points each: downsampled, still under the budget
    output = tmp_path / "per-run.html"
    done = report(logs, output, "--metric", "train.loss", "--x", "epoch", "--group-by", "log_id")
    assert done.returncode == 0, done.stderr
    assert output.stat().st_size < 5_000_000, output.stat().st_size
    assert "are downsampled" in output.read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--metric", "train.lost"], "unknown metric 'train.lost'"),
    (["--metric", "train.loss", "--filter", "config.seed == 7"], "no run matching 'config.seed == 7'"),
    (["--metric", "train.loss", "--filter", "config.seed = 7"], "cannot parse filter"),
    (["--metric", "train.loss", "--group-by", "config.lrr"], "unknown column 'config.lrr'"),
    (["--metric", "train.loss", "--x", "epochs"], "epochs"),
])
def test_bad_input_is_one_line_and_leaves_the_old_report(small, tmp_path, args, message):
    output = tmp_path / "report.html"
    output.write_text("the previous report")
    done = report(small, output, *args)
    assert done.returncode == 2, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlxcore: error: ") and message in lines[0], done.stderr
    assert output.read_text() == "the previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temporary file left


def test_unwritable_output_is_one_line(small, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for output in (blocker / "report.html", tmp_path / "report.png"):
        done = report(small, output, "--metric", "train.loss")
        assert done.returncode == 2
        assert done.stderr.startswith("mlxcore: error: cannot write") and len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "report.png").exists()
    done = report(tmp_path / "missing", tmp_path / "r.html", "--metric", "train.loss")
    assert done.returncode == 2 and "no logs directory" in done.stderr


def test_log_axes_clip_the_band_at_the_bottom_of_the_axis():
    from mlxcore.report.curves import figure

    rows = [{"x": x, "mean": m, "std": s, "sem": s / 2, "n": 3} for x, m, s in [(0, 1.0, 2.0), (1, 0.5, 0.1),
                                                                                (2, 0.2, 0.3)]]
    plot, info = figure(rows, [], "train.loss", "epoch", "std", logy=True)
    band = next(r for r in plot.renderers if r.name == "band:0")
    lower = [float(v) for v in band.data_source.data["lower"]]
    # the edges at or below zero (1 - 2, 0.2 - 0.3) stop at half the lowest positive value drawn (the mean 0.2)
    assert [round(v, 6) for v in lower] == [0.1, 0.4, 0.1]
    assert math.isclose(plot.y_range.start, 0.1)
    plot, _ = figure(rows, [], "train.loss", "epoch", "std", logy=False)
    band = next(r for r in plot.renderers if r.name == "band:0")
    assert float(band.data_source.data["lower"][0]) == -1.0  # linear axes: the band as it is
    assert info["curves"] == 1


def test_downsampling_keeps_the_envelope():
    from mlxcore.report.curves import downsample

    points = [(float(i), float(i % 10), float(i % 10) - 1, float(i % 10) + 1) for i in range(1000)]
    out = downsample(points, 100)
    assert len(out) == 100
    assert min(p[2] for p in out) == -1 and max(p[3] for p in out) == 10
    assert out[0][0] == 4.5 and out[-1][0] == 994.5


def test_importing_mlxcore_and_its_cli_does_not_import_bokeh():
    heavy = ("bokeh", "jinja2", "selenium", "numpy")
    code = ("import sys\nfrom mlxcore.cli import main\nsys.argv = ['mlxcore', 'report', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY', sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip().endswith("HEAVY []"), out
