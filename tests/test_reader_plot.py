"""Plots: one mean curve per group with a std or sem band, rendered to PNG/SVG/PDF by ``reader.plot`` and by
``mlxcore plot``; the picture's size and the number of drawn lines and bands are checked."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from mlxcore import QueryError  # noqa: E402
from mlxcore.reader.engine import DuckDBReader  # noqa: E402
from mlxcore.reader.synthetic import write_run  # noqa: E402


@pytest.fixture(scope="module")
def reader(tmp_path_factory) -> DuckDBReader:
    logs = tmp_path_factory.mktemp("plot") / "logs"
    for lr in (0.1, 0.3, 0.9):
        for seed in (1, 2, 3):
            rows = [{"epoch": e, "loss": 1 / (1 + lr * e) + 0.02 * seed} for e in range(10)]
            write_run(logs, {"seed": seed, "optimizer": {"lr": lr}}, {"train": rows})
    return DuckDBReader(logs)


def test_plot_draws_one_mean_curve_and_one_band_per_group(reader, tmp_path):
    figure = reader.plot("train.loss", x="epoch", group_by="config.optimizer.lr", band="std", figsize=(5, 3), dpi=80)
    ax = figure.axes[0]
    assert len(ax.get_lines()) == 3 and len(ax.collections) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["optimizer.lr=0.1 (n=3)", "optimizer.lr=0.3 (n=3)",
                                                                   "optimizer.lr=0.9 (n=3)"]
    assert ax.get_title() == "train.loss: mean ± std over 3 runs per curve"
    means = reader.curves("train.loss", x="epoch", group_by="config.optimizer.lr", filter="config.optimizer.lr == 0.1")
    assert ax.get_lines()[0].get_ydata().tolist() == pytest.approx(means["mean"].tolist())
    assert ax.get_lines()[0].get_xdata().tolist() == list(range(10))
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "train.loss"
    png = tmp_path / "curves.png"
    figure.savefig(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and imread(png).shape == (240, 400, 4)
    pdf = tmp_path / "curves.pdf"
    figure.savefig(pdf)
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_sem_bands_are_narrower_than_std_bands_and_none_draws_no_band(reader):
    def band_height(band: str) -> float:
        ax = reader.plot("train.loss", x="epoch", group_by="config.optimizer.lr", band=band).axes[0]
        extents = [c.get_paths()[0].get_extents() for c in ax.collections]
        return sum(e.height for e in extents)

    assert 0 < band_height("sem") < band_height("std")
    bare = reader.plot("train.loss", band=None, filter="config.seed == 1").axes[0]
    assert len(bare.collections) == 0 and len(bare.get_lines()) == 1 and bare.get_xlabel() == "row"


def test_plot_draws_into_a_given_axes_and_refuses_what_it_cannot_draw(reader):
    from matplotlib.figure import Figure

    figure = Figure()
    left, right = figure.subplots(1, 2)
    assert reader.plot("train.loss", group_by=["config.seed"], ax=right) is figure
    assert len(right.get_lines()) == 3 and len(left.get_lines()) == 0
    with pytest.raises(QueryError, match="unknown band 'iqr'"):
        reader.plot("train.loss", band="iqr")
    with pytest.raises(QueryError, match="nothing to plot"):
        reader.plot("train.loss", filter="config.seed == 9")


def _plot_cli(reader: DuckDBReader, cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlxcore", "plot", str(reader.path), "--metric", "train.loss", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**os.environ, "MPLBACKEND": "TkAgg"})  # the command must not need a display


def test_the_plot_command_writes_png_and_svg(reader, tmp_path):
    png = tmp_path / "out" / "curves.png"
    result = _plot_cli(reader, tmp_path, "--x", "epoch", "--group-by", "config.optimizer.lr", "--band", "sem",
                       "--size", "4x3", "--dpi", "50", "-o", str(png))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {png} (3 curve(s))\n"
    assert imread(png).shape == (150, 200, 4)
    svg = tmp_path / "curves.svg"
    result = _plot_cli(reader, tmp_path, "--group-by", "config.optimizer.lr,config.seed",
                       "--filter", "config.seed <= 2", "-o", str(svg))
    assert result.returncode == 0, result.stderr
    assert "(6 curve(s))" in result.stdout and svg.read_text().count("<svg") == 1


@pytest.mark.parametrize(("args", "message"), [
    (["-o", "curves.jpg"], "give a file name ending in .png, .svg, .pdf"),
    (["--size", "big", "-o", "curves.png"], "bad --size 'big'"),
    (["--group-by", "config.lrr", "-o", "curves.png"], "unknown column 'config.lrr' in group_by"),
])
def test_the_plot_command_reports_errors_in_one_line(reader, tmp_path, args, message):
    result = _plot_cli(reader, tmp_path, *args)
    assert result.returncode == 2
    assert result.stderr.startswith("mlxcore: error: ") and message in result.stderr and result.stderr.count("\n") == 1


def test_on_log_axes_a_band_reaching_zero_stops_at_the_bottom_of_the_plot(tmp_path):
    """mean - std <= 0 used to send the band to 1e-300 (a log axis cannot show 0), squashing every curve."""
    logs = tmp_path / "logs"
    for seed, scale in ((1, 0.01), (2, 1.0), (3, 0.02)):  # a wide spread: mean - std < 0 from the first row
        write_run(logs, {"seed": seed}, {"train": [{"epoch": e, "loss": scale / (1 + e)} for e in range(5)]})
    write_run(logs, {"seed": 4, "group": "b"}, {"train": [{"epoch": e, "loss": 0.5} for e in range(3)]})
    with DuckDBReader(logs) as reader:
        ax = reader.plot("train.loss", x="epoch", group_by="config.group", logy=True).axes[0]
        curves = reader.curves("train.loss", x="epoch", group_by="config.group", result_format="records")
    assert any(r["mean"] - r["std"] <= 0 for r in curves if r["std"] is not None)
    lowest_mean = min(r["mean"] for r in curves)
    bottom, _ = ax.get_ylim()
    assert 0 < bottom < lowest_mean and bottom > lowest_mean / 10, (bottom, lowest_mean)
    for band in ax.collections:
        ys = [y for path in band.get_paths() for _, y in path.vertices]
        assert min(ys) >= bottom * 0.999, min(ys)
    assert ax.get_title() == "train.loss: mean ± std over 1-3 runs per curve"
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["group=None (n=3)", "group=b (n=1)"]
