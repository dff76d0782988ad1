"""``mlxcore report`` opened in a real headless Chromium (Debian's package, driven by Selenium and chromedriver).

The logs are real: a sweep launched through ``mlxcore.launch`` (some points raise, so the report has failures
with a traceback and a rerun command) and runs written by the real logger (``write_run``) with every kind of
value the filter language meets (NaN, None, big integers, strings, lists, mixed types). The page is built by the
``mlxcore report`` command in a subprocess and loaded from ``file://``. The page's filter evaluator is checked
against ``Reader.filter`` as the oracle. One browser serves the whole module. Without Chromium the module skips,
except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mlxcore
from mlxcore.reader.synthetic import write_run

TASK = """
import math, sys
import mlxcore

@mlxcore.launch(config_path="./configs")
def train(ctx):
    cfg = ctx.config
    if cfg.lr == cfg.fail_lr and cfg.seed == 3:
        print("warning: loss is nan at epoch 3 (simulated)", file=sys.stderr, flush=True)
        raise RuntimeError(f"diverged at lr={cfg.lr}")
    for epoch in range(30):
        loss = math.exp(-cfg.lr * epoch / cfg.depth) * (1 + 0.05 * cfg.seed)
        ctx.logger.log_metrics({"epoch": epoch, "loss": loss}, log_name="train")

if __name__ == "__main__":
    train()
"""
GROUPS = "config.lr,config.depth"
POOL = ("+mlx.use_scheduler=true", "+mlx.scheduler.workers=2")  # the local pool: each run's stderr in log.stderr


@pytest.fixture(scope="module")
def browser(chromium_driver):
    driver = chromium_driver()
    driver.set_window_size(1280, 800)
    try:
        yield driver
    finally:
        driver.quit()


def report(logs: Path, output: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlxcore", "report", str(logs), "-o", str(output), *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A sweep launched through the local pool: 2 learning rates x 2 depths x 3 seeds, the seed-3 points of lr 0.3
    raise; plus a run that ended TIMEOUT and one CANCELLED (written by the real logger)."""
    root = tmp_path_factory.mktemp("report") / "project"
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "config.yaml").write_text("seed: 1\nlr: 0.1\ndepth: 2\nfail_lr: 0.3\n")
    (root / "main.py").write_text(TASK)
    done = subprocess.run([sys.executable, "main.py", "lr=0.1,0.3", "depth=2,4", "seed=1,2,3", *POOL], cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr  # two points failed
    for status in ("TIMEOUT", "CANCELLED"):
        write_run(root / "logs", {"seed": 4, "lr": 0.1, "depth": 2, "fail_lr": 0.3}, status=status)
    return root / "logs"


@pytest.fixture(scope="module")
def page(sweep, browser):
    output = sweep.parent / "out" / "report.html"
    done = report(sweep, output, "--metric", "train.loss", "--x", "epoch", "--group-by", GROUPS, "--logy")
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and output.is_file()
    browser.get_log("performance")  # drop what earlier pages logged
    browser.get_log("browser")
    browser.get(output.as_uri())
    _wait(browser, "return window.mlxReport !== undefined && window.Bokeh !== undefined "
                   "&& Bokeh.documents.length > 0")
    return output


def _wait(browser, script: str, timeout: float = 20) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout).until(lambda d: d.execute_script(script))


def _visible_ids(browser) -> list[int]:
    return browser.execute_script("return [...document.querySelectorAll('#runs tbody tr')]"
                                  ".filter(tr => !tr.hidden).map(tr => Number(tr.dataset.logId))")


def test_opens_with_no_console_error_and_no_request(page, browser):
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    requests = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    # the page itself, from disk, and the toolbar's inline icons (data: URLs, decoded in the page); nothing else
    assert [url for url in requests if not url.startswith("data:")] == [page.as_uri()]
    text = page.read_text()
    assert "<script src" not in text and "<link " not in text


def test_table_shows_every_run_with_status_colours(page, browser, sweep):
    expected = sorted(mlxcore.Reader(sweep).filter(result_format="records"), key=lambda r: r["log_id"])
    assert len(expected) == 14
    assert sorted(_visible_ids(browser)) == [r["log_id"] for r in expected]
    statuses = browser.execute_script("return [...document.querySelectorAll('#runs td.status')].map(td => "
                                      "[td.textContent, getComputedStyle(td).backgroundColor])")
    colours = dict(statuses)
    assert set(colours) == {"COMPLETE", "FAILED", "TIMEOUT", "CANCELLED"}
    assert len(set(colours.values())) == 4  # one colour per status
    headers = browser.execute_script("return [...document.querySelectorAll('#runs th')].map(th => th.textContent)")
    assert {"config.lr", "config.depth", "config.seed", "train.loss.last"} <= set(headers)
    assert "config.fail_lr" not in headers  # the same in every run: says nothing


FILTERS = ["", "config.lr == 0.1", "config.lr <= 0.2 & config.depth == 4", "status == 'FAILED' | config.seed == 4",
           "~(status == 'COMPLETE')", "train.loss.last < 0.5", "~train.loss.last < 0.5", "info.error.type != null",
           "config.depth in [4, 8] & ~(config.seed in [1])", "status > 'D'", "train.loss.last == null",
           "CONFIG.LR == 1e-1 & (config.seed == 2 | config.seed == 3)"]


def test_filter_box_narrows_the_table_like_the_reader(page, browser, sweep):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    reader = mlxcore.Reader(sweep)
    box = browser.find_element(By.ID, "filter")
    for text in FILTERS:
        expected = [r["log_id"] for r in reader.filter(text, result_format="records")]
        box.clear()
        box.send_keys(text, Keys.ENTER)
        assert sorted(_visible_ids(browser)) == sorted(expected), text
        status = browser.find_element(By.ID, "filter-status").text
        assert status == f"{len(expected)} of 14 runs", text
    box.clear()
    box.send_keys("config.lr = 0.1", Keys.ENTER)  # refused, as the reader refuses it; the table stays as it was
    assert "cannot parse filter" in browser.find_element(By.ID, "filter-status").text
    assert box.get_attribute("aria-invalid") == "true"
    box.clear()
    box.send_keys("config.lrr == 0.1", Keys.ENTER)
    assert "unknown column 'config.lrr'" in browser.find_element(By.ID, "filter-status").text
    box.clear()
    box.send_keys(Keys.ENTER)
    assert len(_visible_ids(browser)) == 14


def test_keyboard_tab_to_the_filter_type_enter_then_sort(page, browser, sweep):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    browser.get(page.as_uri())
    _wait(browser, "return window.mlxReport !== undefined")
    ActionChains(browser).send_keys(Keys.TAB).perform()
    assert browser.execute_script("return document.activeElement.id") == "filter"
    ActionChains(browser).send_keys("config.depth == 4", Keys.ENTER).perform()
    expected = [r["log_id"] for r in mlxcore.Reader(sweep).filter("config.depth == 4", result_format="records")]
    assert sorted(_visible_ids(browser)) == sorted(expected) and expected
    # Tab on: the Apply button, the table region, then the first column's sort button; Enter sorts by it
    ActionChains(browser).send_keys(Keys.TAB, Keys.TAB, Keys.TAB).perform()
    assert browser.execute_script("return document.activeElement.textContent") == "log_id"
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    ActionChains(browser).send_keys(Keys.ENTER).perform()  # again: descending
    assert _visible_ids(browser) == sorted(expected, reverse=True)
    assert browser.execute_script("return document.activeElement.closest('th').getAttribute('aria-sort')") \
        == "descending"


def test_plot_has_one_trace_group_per_setting(page, browser, sweep):
    groups = mlxcore.Reader(sweep).compare(group_by=GROUPS.split(","), metric="train.loss", result_format="records")
    settings = {(g["config.lr"], g["config.depth"]) for g in groups if g["n"]}
    assert len(settings) == 4
    found = browser.execute_script("""
        const models = [...Bokeh.documents[0].all_models];
        const named = (p) => models.filter(m => typeof m.name === 'string' && m.name.startsWith(p)).length;
        const legend = models.find(m => m.items !== undefined && m.click_policy !== undefined);
        return [named('curve:'), named('band:'), legend.items.length,
                legend.items.map(i => i.label.value), models.find(m => m.name === 'curves').y_scale.type];
    """)
    lines, bands, entries, labels, y_scale = found
    assert (lines, bands, entries) == (4, 4, 4)
    # lr 0.3 lost its seed-3 runs (they failed before logging)
    assert sorted(labels) == sorted(f"lr={lr}, depth={depth} (n={2 if lr == 0.3 else 3})" for lr, depth in settings)
    assert y_scale == "LogScale"
    # and it is drawn: a canvas (inside Bokeh's shadow DOM) as wide as the page's content column allows
    widths = browser.execute_script("""
        const found = [];
        const walk = (e) => { if (e.tagName === 'CANVAS') found.push(e.getBoundingClientRect().width);
                              if (e.shadowRoot) [...e.shadowRoot.children].forEach(walk);
                              [...e.children].forEach(walk); };
        walk(document.querySelector('div[data-root-id]'));
        return found;""")
    assert 800 < max(widths) <= 1280


def test_failures_are_triaged_with_their_error_and_the_rerun_command(page, browser, sweep):
    failures = browser.execute_script("""return [...document.querySelectorAll('details.failure')].map(d =>
        [d.dataset.logId, d.querySelector('summary').textContent, d.textContent])""")
    assert len(failures) == 4  # two FAILED, one TIMEOUT, one CANCELLED
    failed = [f for f in failures if "FAILED" in f[1]]
    assert len(failed) == 2
    for _, summary, text in failed:
        assert "RuntimeError: diverged at lr=0.3" in summary
        assert "raise RuntimeError" in text  # the end of the traceback
        assert "warning: loss is nan at epoch 3 (simulated)" in text  # the end of log.stderr
    assert {s.split()[2] for _, s, _ in failures} == {"FAILED", "TIMEOUT", "CANCELLED"}
    reruns = browser.execute_script("return [...document.querySelectorAll('pre.rerun')].map(p => p.textContent)")
    # one command per sweep: the launched one, and the process that wrote the TIMEOUT and CANCELLED runs (this one)
    assert len(reruns) == 2 and all(r.endswith(" +mlx.rerun_failed=true") for r in reruns)
    assert reruns[0] == (f"cd {sweep.parent} && python main.py lr=0.1,0.3 depth=2,4 seed=1,2,3 " + " ".join(POOL)
                         + " +mlx.rerun_failed=true")
    totals = browser.execute_script("return [...document.querySelectorAll('.totals tbody tr')].map(tr => "
                                    "[...tr.cells].map(td => td.textContent))")
    assert {row[0]: int(row[1]) for row in totals} == {"COMPLETE": 10, "FAILED": 2, "TIMEOUT": 1, "CANCELLED": 1}


def test_no_horizontal_overflow_at_1280x800(page, browser):
    browser.set_window_size(1280, 800)
    browser.get(page.as_uri())
    _wait(browser, "return window.Bokeh !== undefined && Bokeh.documents.length > 0")
    width = browser.execute_script("return window.innerWidth")
    assert width <= 1280
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width


# -- the page's filter evaluator against Reader.filter, on every kind of value --------------------------------
VALUES = [0, 1, -1, 2, 9, 100, 2**53 + 1, 2**63 - 1, 0.5, -1.5, 0.01, 2.0, -0.0, math.nan, math.inf, -math.inf,
          "sgd", "adam", "Adam", "é", "日本", "😀", "it's", "", "auto", True, False, None]
LITERALS = ["null", "None", "true", "false", "0", "1", "-1", "2", "9", "2.0", "0.5", ".5", "1e-2", "1e999", "-1e999",
            "9007199254740993", "9007199254740992", "100", "'sgd'", "'adam'", "'Adam'", "'auto'", "''", "'é'",
            "'日本'", "'\\U0001f600'", "\"it\\'s\"", "'9'", "'a'", "'z'", "1e300", "-0.0", "3"]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, browser) -> Path:
    """40 runs with numbers, big integers, NaN, infinities, strings, booleans, None, lists and missing keys."""
    rng = random.Random(7)
    logs = tmp_path_factory.mktemp("mixed") / "logs"
    for n in range(40):
        config = {"i": rng.choice([0, 1, -1, 2, 9, 100, 2**53 + 1, 2**63 - 1]), "f": rng.choice(VALUES[8:16]),
                  "s": rng.choice(VALUES[16:25]), "b": rng.choice([True, False]), "mix": rng.choice(VALUES),
                  "batch": rng.choice([9, 100, "auto"]), "l": rng.choice([[1, 2], [], {"a": 1}, 3, "x"]),
                  "opt": {"lr": rng.choice([0.1, 0.01, 1e-3]), "name": rng.choice(["sgd", "adam"])}, "seed": n}
        for key in ("i", "f", "s", "mix"):
            if rng.random() < 0.15:
                del config[key]
            elif rng.random() < 0.1:
                config[key] = None
        losses = [rng.choice([0.5, 0.1, math.nan, 2.0]) for _ in range(rng.randint(1, 3))]
        write_run(logs, config, {"train": [{"loss": x, "step": s} for s, x in enumerate(losses)]} if n % 7 else None)
    output = logs.parent / "mixed.html"
    done = report(logs, output, "--metric", "train.loss", "--x", "step")
    assert done.returncode == 0, done.stderr
    browser.get(output.as_uri())
    _wait(browser, "return window.mlxReport !== undefined")
    return logs


def _filters() -> list[str]:
    columns = ["config.i", "config.f", "config.s", "config.b", "config.mix", "config.batch", "config.l",
               "config.opt.lr", "config.opt.name", "train.loss.last", "train.loss.max", "status", "log_id"]
    ops = ["==", "!=", "<", "<=", ">", ">="]
    found = [f"{c} {op} {lit}" for c in columns for op in ops for lit in LITERALS]
    rng = random.Random(3)
    found = rng.sample(found, 700)
    found += [f"{c} in [{', '.join(rng.sample(LITERALS, 3))}]" for c in columns for _ in range(3)]
    singles = list(found)
    for _ in range(120):
        a, b, c = rng.sample(singles, 3)
        found.append(rng.choice([f"{a} & {b}", f"{a} | ~{b}", f"~({a} | {b}) & {c}", f"({a} | {b}) & ~({c})",
                                 f"{a}&{b}|{c}"]))
    return found


def test_page_filters_select_what_the_reader_selects(mixed, browser):
    reader = mlxcore.Reader(mixed)
    filters = _filters()
    answers = browser.execute_script("""return arguments[0].map(f => {
        try { return mlxReport.select(f); } catch (e) { return 'error: ' + e.message; } });""", filters)
    wrong = []
    for text, answer in zip(filters, answers):
        expected = sorted(r["log_id"] for r in reader.filter(text, result_format="records"))
        if answer != expected:
            wrong.append((text, answer, expected))
    assert wrong == [], f"{len(wrong)} of {len(filters)} filters differ, e.g. {wrong[:3]}"


@pytest.mark.parametrize("text", ["config.i = 1", "config.i == 1 OR 1=1 --", "config.i", "config.i == 1 &",
                                 "(config.i == 1", "config.nope == 1", "config.i == 'open", "config.i == 1_000",
                                 "config.i in 1"])
def test_page_refuses_what_the_reader_refuses(mixed, browser, text):
    from mlxcore import QueryError

    with pytest.raises(QueryError):
        mlxcore.Reader(mixed).filter(text)
    answer = browser.execute_script("try { mlxReport.select(arguments[0]); return 'accepted'; } "
                                    "catch (e) { return e.name + ': ' + e.message; }", text)
    assert answer != "accepted" and not answer.startswith(("TypeError", "RangeError", "SyntaxError")), answer


def test_report_text_in_the_runs_cannot_inject_markup(tmp_path, browser):
    logs = tmp_path / "logs"
    write_run(logs, {"name": "</script><script>window.injected=1</script>", "seed": 1},
              {"train": [{"loss": 1.0}]})
    write_run(logs, {"name": "<img src=x onerror=window.injected=2>", "seed": 2}, {"train": [{"loss": 2.0}]})
    output = tmp_path / "r.html"
    assert report(logs, output, "--metric", "train.loss").returncode == 0
    browser.get(output.as_uri())
    _wait(browser, "return window.mlxReport !== undefined")
    assert browser.execute_script("return window.injected === undefined")
    cells = browser.execute_script("return [...document.querySelectorAll('#runs td')].map(td => td.textContent)")
    assert "<img src=x onerror=window.injected=2>" in cells


def test_help_text_is_documented():
    out = subprocess.run([sys.executable, "-m", "mlxcore", "report", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for option in ("--metric", "--x", "--group-by", "--filter", "--band", "--logy", "--output"):
        assert option in out.stdout
    assert textwrap.dedent("mlxcore report ./logs") in out.stdout


def test_a_selection_without_curves_still_reports_its_failures(sweep, browser, tmp_path):
    output = tmp_path / "failures.html"
    done = report(sweep, output, "--metric", "train.loss", "--x", "epoch", "--filter", "status != 'COMPLETE'")
    assert done.returncode == 0, done.stderr
    assert "4 run(s), 0 curve(s), 4 failure(s)" in done.stdout
    assert output.stat().st_size < 100_000  # no curve, no BokehJS
    browser.get_log("browser")
    browser.get(output.as_uri())
    _wait(browser, "return window.mlxReport !== undefined")
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []
    assert len(_visible_ids(browser)) == 4
    assert "No run selected logged numeric values of train.loss" in browser.find_element("id", "h-curves") \
        .find_element("xpath", "..").text
    assert len(browser.find_elements("css selector", "details.failure")) == 4


def test_the_rerun_command_reruns_the_failed_points_only(tmp_path, browser):
    root = tmp_path / "project"
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "config.yaml").write_text("seed: 1\nlr: 0.1\ndepth: 2\nfail_lr: 0.3\n")
    (root / "main.py").write_text(TASK)
    done = subprocess.run([sys.executable, "main.py", "lr=0.1,0.3", "seed=1,3"], cwd=root, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    output = tmp_path / "report.html"
    assert report(root / "logs", output, "--metric", "train.loss").returncode == 0
    browser.get(output.as_uri())
    _wait(browser, "return window.mlxReport !== undefined")
    (command,) = browser.execute_script("return [...document.querySelectorAll('pre.rerun')].map(p => p.textContent)")
    (failed,) = [r for r in mlxcore.Reader(root / "logs").filter(result_format="records") if r["status"] == "FAILED"]
    # the command as a user pastes it: `python` is the interpreter of this environment
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    again = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                           env=env)
    assert again.returncode == 1, again.stderr  # the point fails again: it always does
    runs = mlxcore.Reader(root / "logs").filter(result_format="records")
    assert len(runs) == 4  # no new run: the failed point ran again in its own directory
    (rerun,) = [r for r in runs if r["log_id"] == failed["log_id"]]
    assert rerun["info.attempt"] == 2
    assert {r["info.attempt"] for r in runs if r["log_id"] != failed["log_id"]} == {1}
