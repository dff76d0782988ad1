"""The best-so-far plot of a search: ``mlxcore.reader.trials.trials`` (a DataFrame of the trial runs) and
``draw_trials`` / ``mlxcore plot --trials``. The drawn data is checked on the figure's lines, not on pixels,
against values computed from the runs' configs. The trial runs are made for real by the ``testsearch`` sweeper
of ``test_trials_status.py``."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from mlxcore.errors import QueryError  # noqa: E402
from mlxcore.reader.plot import draw_trials  # noqa: E402
from mlxcore.reader.trials import COLUMNS, trials  # noqa: E402

_spec = importlib.util.spec_from_file_location("trials_search", Path(__file__).with_name("test_trials_status.py"))
assert _spec is not None and _spec.loader is not None
search_app = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(search_app)


@pytest.fixture
def logs(tmp_path, fresh_plugins) -> Path:
    """Two studies in one logs directory: ``main`` minimizes train.loss (8 trials), ``acc`` maximizes train.acc
    (12 trials); trials of depth 3 are PRUNED, of depth 4 FAIL."""
    launch = search_app.make_launcher(tmp_path, fresh_plugins)
    assert search_app.search(launch, seed=5) == 1
    assert search_app.search(launch, seed=6, n_trials=12, study="acc", metric="train.acc", direction="maximize") == 1
    return launch.logs


def expected(logs: Path, ids: range, maximize: bool) -> tuple[list, list, list, list]:
    """``(complete numbers, their values, pruned numbers, failed numbers)`` from the runs' configs."""
    done, values, pruned, failed = [], [], [], []
    for number, log_id in enumerate(ids):
        config = search_app.config(logs, log_id)
        if config["depth"] <= 2:
            loss = search_app.expected_loss(config)
            done.append(number)
            values.append(1 - loss if maximize else loss)
        (pruned if config["depth"] == 3 else failed if config["depth"] == 4 else []).append(number)
    return done, values, pruned, failed


def running_best(values: list[float], maximize: bool) -> list[float]:
    best, out = None, []
    for value in values:
        best = value if best is None else (max if maximize else min)(best, value)
        out.append(best)
    return out


def lines_by_gid(axis) -> dict:
    return {line.get_gid(): line for line in axis.get_lines()}


@pytest.mark.parametrize(("study", "ids", "maximize"), [("main", range(1, 9), False), ("acc", range(9, 21), True)])
def test_the_best_so_far_line_is_the_running_best_of_the_complete_trials(logs, study, ids, maximize):
    rows = trials(logs, study=study, result_format="records")
    figure = draw_trials(rows)
    (axis,) = figure.axes
    done, values, pruned, failed = expected(logs, ids, maximize)
    assert done and pruned and failed  # every kind of trial is drawn
    drawn = lines_by_gid(axis)
    assert list(drawn["complete"].get_xdata()) == done
    assert list(drawn["complete"].get_ydata()) == pytest.approx(values)
    # from the first COMPLETE trial on, at every trial: the best COMPLETE value so far (pruned ones logged better
    # values, which must not count)
    steps = drawn["best-so-far"]
    assert list(steps.get_xdata()) == list(range(done[0], len(ids)))
    best_at = dict(zip(done, running_best(values, maximize)))
    expected_steps = [best_at[max(n for n in done if n <= x)] for x in range(done[0], len(ids))]
    assert list(steps.get_ydata()) == pytest.approx(expected_steps)
    assert steps.get_drawstyle() == "steps-post"
    assert list(drawn["pruned"].get_xdata()) == pruned and list(drawn["fail"].get_xdata()) == failed
    best_number = done[values.index((max if maximize else min)(values))]
    metric = "train.acc.last" if maximize else "train.loss.last"
    assert axis.get_title() == (f"study {study}: {metric}, {'maximize' if maximize else 'minimize'} "
                                f"({len(ids)} trials)")
    legend = [t.get_text() for t in axis.get_legend().get_texts()]
    assert legend[-1].startswith(f"best so far ({'max' if maximize else 'min'}); best: trial {best_number} "
                                 f"(run {ids[best_number]}) = ")
    assert "PRUNED trial (" in " ".join(legend) and "FAIL trial (" in " ".join(legend)


def test_trials_is_a_dataframe_with_one_best_trial_per_study(logs):
    frame = trials(logs)
    assert list(frame.columns) == [*COLUMNS, "params.lr", "params.depth"]
    assert list(frame["study"].unique()) == ["main", "acc"] and len(frame) == 20
    assert frame.groupby("study")["is_best"].sum().to_dict() == {"main": 1, "acc": 1}
    main = frame[frame.study == "main"]
    done = main[main.state == "COMPLETE"]
    assert main[main.is_best].value.item() == done.value.min()
    assert set(main[main.state == "PRUNED"].status) == {"PRUNED"}
    assert set(main[main.state == "FAIL"].status) == {"FAILED"}
    acc = frame[frame.study == "acc"]
    assert acc.best_so_far.dropna().is_monotonic_increasing and main.best_so_far.dropna().is_monotonic_decreasing
    with pytest.raises(QueryError, match=r"no study 'nope'.*studies: main, acc"):
        trials(logs, study="nope")


def plot_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlxcore", "plot", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "MPLBACKEND": "TkAgg"})  # no display needed


def test_the_plot_command_draws_each_study_or_the_chosen_ones(logs, tmp_path):
    both = tmp_path / "best.png"
    result = plot_cli("--trials", str(logs), "--size", "4x3", "--dpi", "50", "-o", str(both))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {both} (2 studies)\n"
    assert imread(both).shape == (300, 200, 4)  # one 4x3 in axes per study, stacked
    one = tmp_path / "acc.svg"
    result = plot_cli("--trials", str(logs), "--study", "acc", "--filter", "config.depth <= 3", "-o", str(one))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {one} (1 study)\n" and "study acc" in one.read_text()
    result = plot_cli(str(logs), "-o", str(tmp_path / "curves.png"))  # no --trials: a metric is needed
    assert result.returncode == 2 and "give --metric <stream>.<key>" in result.stderr
    result = plot_cli(str(logs), "--metric", "train.loss", "--study", "acc", "-o", str(tmp_path / "curves.png"))
    assert result.returncode == 2 and "--study selects the studies of --trials" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--study", "nope"], "no study 'nope' in"),
    (["--metric", "train.loss"], "--metric, --x and --group-by do not apply"),
    (["--filter", "config.depth == 9"], "nothing to plot: no trial run"),
])
def test_the_trials_plot_reports_errors_in_one_line(logs, tmp_path, args, message):
    result = plot_cli("--trials", str(logs), *args, "-o", str(tmp_path / "best.png"))
    assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "best.png").exists()
