"""``mlxcore ui`` served for real (the command in a subprocess) and used from a real headless Chromium (Debian's
package, driven by Selenium and chromedriver).

Two servers per module: one on loopback over a logs directory into which a real task writes a run while the
page is open, one bound to 0.0.0.0 (a token required) over a directory that must stay as it was, byte for byte
and stamp for stamp, through a session of page loads, polls and SQL queries. The expected answers come from
``mlxcore.Reader`` (with its catalog outside the logs). Without Chromium the browser tests skip, except under
``CI=true``, where they fail.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import mlxcore
from mlxcore.reader.synthetic import write_run

if os.environ.get("CI") != "true":  # under CI the test extra has installed them: a missing one fails
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    pytest.importorskip("bokeh")

TASK = """
import pathlib, time
import mlxcore

@mlxcore.launch(config_path="./configs")
def train(ctx):
    go = pathlib.Path(ctx.config.go)
    ctx.logger.log_metrics({"epoch": 0, "loss": 1.0}, log_name="train")
    deadline = time.time() + 120
    while not go.exists() and time.time() < deadline:
        time.sleep(0.05)
    for epoch in range(1, 6):
        ctx.logger.log_metrics({"epoch": epoch, "loss": 1.0 / (1 + epoch)}, log_name="train")

if __name__ == "__main__":
    train()
"""


class Server:
    """``mlxcore ui`` in a subprocess; ``url`` is the URL it printed."""

    def __init__(self, logs: Path, cache: Path, *args: str) -> None:
        env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "mlxcore", "ui", str(logs), *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.line = self._first_line(60)
        found = re.search(r"http://\S+", self.line)
        if not found:
            _, _, err = self.stop()
            raise AssertionError(f"no URL printed: {self.line!r}; stderr: {err[-2000:]}")
        self.url = found.group(0)
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    def _first_line(self, timeout: float) -> str:
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            self.stop()
            raise AssertionError("mlxcore ui printed nothing in 60 s")
        return self.process.stdout.readline()

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str, str]:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            out, err = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        return self.process.returncode, out, err


def fetch(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` (itself included) with its mode, size and mtime in nanoseconds."""
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in [".", *dirs, *files]:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            found[os.path.relpath(path, root)] = (st.st_mode, st.st_size if name != "." else 0, st.st_mtime_ns)
    return found


def reader(logs: Path, tmp: Path) -> mlxcore.Reader:
    return mlxcore.Reader(logs, catalog=tmp / "test-catalog.duckdb")


def _write_runs(logs: Path) -> None:
    for lr in (0.1, 0.01):
        for seed in (1, 2):
            write_run(logs, {"seed": seed, "lr": lr, "go": ""},
                      {"train": [{"epoch": e, "loss": 1 / (1 + lr * e * seed)} for e in range(6)]})
    write_run(logs, {"seed": 3, "lr": 0.1, "go": ""}, {"train": [{"epoch": 0, "loss": 2.0}]}, status="FAILED")


@pytest.fixture(scope="module")
def browser(chromium_driver):
    driver = chromium_driver()
    driver.set_window_size(1280, 800)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project whose ``logs`` holds five runs written by the real logger; ``main.py`` is a task that waits."""
    root = tmp_path_factory.mktemp("ui") / "project"
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "config.yaml").write_text(f"seed: 9\nlr: 0.05\ngo: {root.parent / 'go'}\n")
    (root / "main.py").write_text(TASK)
    _write_runs(root / "logs")
    return root


@pytest.fixture(scope="module")
def server(project):
    served = Server(project / "logs", project.parent / "cache", "--metric", "train.loss", "--x", "epoch",
                    "--group-by", "config.lr")
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="module")
def frozen(tmp_path_factory) -> tuple[Path, dict]:
    """Logs that nothing writes to, and what they are before the token server starts."""
    logs = tmp_path_factory.mktemp("frozen") / "logs"
    _write_runs(logs)
    return logs, snapshot(logs)


@pytest.fixture(scope="module")
def guarded(frozen):
    """The UI bound to every address: a token is required."""
    logs, _ = frozen
    served = Server(logs, logs.parent / "cache", "--host", "0.0.0.0")
    try:
        yield served
    finally:
        served.stop()


def _wait(browser, script: str, timeout: float = 20) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout, poll_frequency=0.1).until(lambda d: d.execute_script(script))


def _open(browser, url: str) -> None:
    browser.get_log("performance")
    browser.get_log("browser")
    browser.get(url)
    _wait(browser, "return window.mlxLive !== undefined && window.mlxReport !== undefined")


def _rows(browser) -> dict[int, str]:
    return dict(browser.execute_script("return [...document.querySelectorAll('#runs tbody tr')]"
                                       ".filter(tr => !tr.hidden).map(tr => [Number(tr.dataset.logId), "
                                       "tr.querySelector('td.status').textContent])"))


def test_prints_its_loopback_url_on_a_free_port(server):
    assert server.line.startswith("mlxcore ui: serving ")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", server.url), server.url  # no token on loopback
    assert 0 < server.port < 65536
    status, body = fetch(server.url)
    assert status == 200 and b'<div id="live">' in body


def test_page_loads_with_no_console_error_and_no_request_elsewhere(server, browser, project):
    _open(browser, server.url)
    _wait(browser, "return window.Bokeh !== undefined && Bokeh.documents.length > 0")
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    requests = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    assert requests and all(u.startswith((server.url, "data:")) for u in requests), requests
    assert any("/api/runs?since=" in u for u in requests)
    # one trace group per setting of config.lr, as in the report; no horizontal overflow at 1280x800
    lines = browser.execute_script("return [...Bokeh.documents[0].all_models].filter(m => typeof m.name === "
                                   "'string' && m.name.startsWith('curve:')).length")
    assert lines == 2
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


def test_runs_table_shows_the_runs(server, browser, project, tmp_path):
    _open(browser, server.url)
    expected = {r["log_id"]: r["status"] for r in reader(project / "logs", tmp_path).filter(result_format="records")}
    assert len(expected) >= 5
    shown = _rows(browser)
    assert {k: v for k, v in shown.items() if k in expected} == expected
    assert browser.execute_script("return mlxReport.apply('config.lr == 0.01')") is not None
    assert len(_rows(browser)) == 2


def test_a_run_appears_and_completes_while_the_page_is_open(server, browser, project, tmp_path):
    go = project.parent / "go"
    go.unlink(missing_ok=True)
    _open(browser, server.url)
    browser.execute_script("window.notReloaded = true")
    before = _rows(browser)
    task = subprocess.Popen([sys.executable, "main.py"], cwd=project, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait(browser, f"return [...document.querySelectorAll('#runs tbody tr')].some(tr => "
                       f"!{sorted(before)!r}.includes(Number(tr.dataset.logId)) && "
                       "tr.querySelector('td.status').textContent === 'RUNNING')", timeout=60)
        (new,) = set(_rows(browser)) - set(before)
        go.write_text("go")
        _wait(browser, f"return document.querySelector('#runs tr[data-log-id=\"{new}\"] td.status')"
                       ".textContent === 'COMPLETE'", timeout=30)
    finally:
        _, err = task.communicate(timeout=120)
    assert task.returncode == 0, err
    assert browser.execute_script("return window.notReloaded === true")  # updated in place, no reload
    assert _rows(browser)[new] == "COMPLETE"
    # the new run's rows are in the curves: its setting (lr 0.05) is a third curve
    _wait(browser, "return [...Bokeh.documents[0].all_models].filter(m => typeof m.name === 'string' "
                   "&& m.name.startsWith('curve:')).length === 3")
    assert browser.execute_script("return Bokeh.documents.length") == 1  # each update replaced the plot
    assert reader(project / "logs", tmp_path).filter(result_format="records")[-1]["train.loss.count"] == 6


def test_filter_and_sort_survive_an_update(server, browser, project):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open(browser, server.url)
    box = browser.find_element(By.ID, "filter")
    box.send_keys("config.lr == 0.1", Keys.ENTER)
    ids = sorted(_rows(browser))
    version = browser.execute_script("return mlxLive.version")
    write_run(project / "logs", {"seed": 5, "lr": 0.1, "go": ""}, {"train": [{"epoch": 0, "loss": 0.5}]})
    _wait(browser, f"return mlxLive.version > {version}")
    assert browser.find_element(By.ID, "filter").get_attribute("value") == "config.lr == 0.1"
    assert len(_rows(browser)) == len(ids) + 1


def _sql(browser, text: str) -> tuple[str, list[list[str]]]:
    from selenium.webdriver.common.by import By

    box = browser.find_element(By.ID, "sql")
    box.clear()
    box.send_keys(text)
    browser.execute_script("document.getElementById('sql-status').textContent = ''")
    browser.find_element(By.CSS_SELECTOR, "#sql-form button").click()
    _wait(browser, "const t = document.getElementById('sql-status').textContent; return t && t !== 'running…'")
    return (browser.find_element(By.ID, "sql-status").text,
            browser.execute_script("return [...document.querySelectorAll('#sql-result tr')].map(tr => "
                                   "[...tr.cells].map(c => c.textContent))"))


def test_sql_box_answers_and_refuses_as_the_reader(server, browser, project, tmp_path):
    _open(browser, server.url)
    runs = len(reader(project / "logs", tmp_path).filter(result_format="records"))
    status, table = _sql(browser, "select count(*) from runs")
    assert status == "1 row(s)" and table == [["count_star()"], [str(runs)]]
    for query in ("copy runs to '/tmp/mlxcore-ui-test.csv'", "select * from read_csv('/etc/passwd')",
                  "attach '/tmp/x.duckdb' as x"):
        with pytest.raises(mlxcore.QueryError) as refused:
            reader(project / "logs", tmp_path).sql(query)
        status, table = _sql(browser, query)
        assert status == str(refused.value).splitlines()[0], query
        assert table == []
        assert browser.find_element("id", "sql").get_attribute("aria-invalid") == "true"
    assert not Path("/tmp/mlxcore-ui-test.csv").exists()


def test_loopback_server_refuses_another_host_name(server):
    status, _ = fetch(server.url, headers={"Host": f"attacker.example:{server.port}"})
    assert status == 400  # a page of another site rebound to 127.0.0.1 reads nothing
    assert fetch(server.url + "api/sql", b'{"sql": "select 1"}', {"Content-Type": "text/plain"})[0] == 415


def test_a_request_without_the_token_is_refused(guarded, browser):
    found = re.fullmatch(r"http://(\S+):(\d+)/\?token=([\w-]{20,})", guarded.url)
    assert found, guarded.url
    token = found.group(3)
    base = f"http://127.0.0.1:{guarded.port}/"
    for path in ("", "api/runs?since=0", "static/ui.js", "static/bokeh.min.js"):
        assert fetch(base + path)[0] == 403, path
        assert fetch(base + path + ("&" if "?" in path else "?") + "token=wrong")[0] == 403, path
        assert fetch(base + path + ("&" if "?" in path else "?") + f"token={token}")[0] == 200, path
    assert fetch(base + "api/runs?since=0", headers={"Cookie": f"mlxcore_ui_token={token}"})[0] == 200
    assert fetch(base + "api/sql", b'{"sql": "select 1"}', {"Content-Type": "application/json"})[0] == 403
    # in the browser: the URL with the token works (the page's own requests carry the cookie), without it 403
    _open(browser, f"{base}?token={token}")
    assert len(_rows(browser)) == 5
    browser.delete_all_cookies()
    browser.get(base)
    assert "needs its access token" in browser.find_element("tag name", "body").text


def test_the_logs_directory_is_never_written(guarded, frozen, browser):
    logs, before = frozen
    _, _, token = guarded.url.partition("?token=")
    base = f"http://127.0.0.1:{guarded.port}/"
    _open(browser, f"{base}?token={token}")
    _sql(browser, "select * from runs")
    _sql(browser, "copy runs to 'x.csv'")
    for _ in range(3):
        version = browser.execute_script("return mlxLive.version")
        time.sleep(2.1)  # polls, each refreshing the catalog
        assert browser.execute_script("return mlxLive.version") == version  # nothing changed, nothing re-sent
    assert snapshot(logs) == before
    catalogs = list((logs.parent / "cache" / "mlxcore" / "catalogs").glob("*/catalog.duckdb"))
    assert len(catalogs) == 1  # the catalog went to the user's cache


def test_ctrl_c_stops_it_cleanly(frozen):
    logs, _ = frozen
    served = Server(logs, logs.parent / "cache-ctrl-c", "--port", "0", "--token")
    assert "?token=" in served.url  # --token: one on loopback too
    assert fetch(served.url)[0] == 200
    code, out, err = served.stop(signal.SIGINT)
    assert code == 0, err
    assert out.strip().endswith("mlxcore ui: stopped")
    assert "Traceback" not in err
    with pytest.raises(OSError):
        urllib.request.urlopen(served.url, timeout=2)


def test_bad_input_is_one_line(frozen, tmp_path):
    logs, _ = frozen
    for args, message in ((["--catalog", str(logs / "c.duckdb")], "mlxcore ui never writes there"),
                          ([], "no logs directory"), (["--host", "192.0.2.1"], "cannot listen on 192.0.2.1")):
        target = tmp_path / "nope" if message == "no logs directory" else logs
        done = subprocess.run([sys.executable, "-m", "mlxcore", "ui", str(target), *args], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)})
        assert done.returncode == 2 and message in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr


def test_help_and_light_imports():
    out = subprocess.run([sys.executable, "-m", "mlxcore", "ui", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for option in ("--metric", "--x", "--group-by", "--filter", "--host", "--port", "--token", "--catalog"):
        assert option in out.stdout
    code = ("import sys; from mlxcore.cli import build_cli; build_cli(); "
            "print(sorted(m for m in ('starlette', 'uvicorn', 'bokeh') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
