"""Take docs/ui.png: ``mlxcore ui`` over the quickstart's runs, in headless Chromium at 1280 pixels wide, with a
query in its SQL box.

    bash scripts/quickstart.sh && .venv/bin/python docs/ui_screenshot.py

Serves a copy of examples/quickstart/logs (written by the quickstart; the copy keeps the original as it is) and
writes docs/ui.png; needs the ui and test extras and Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUERY = ('SELECT "config.optimizer.lr" AS lr, "config.optimizer.momentum" AS momentum, count(*) AS runs,\n'
         '       round(avg("train.loss.last"), 4) AS final_loss FROM runs GROUP BY ALL ORDER BY final_loss')


def main(logs: Path = ROOT / "examples/quickstart/logs", out: Path = ROOT / "docs/ui.png") -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory() as work:
        copy = Path(work) / "logs"
        shutil.copytree(logs, copy, ignore=shutil.ignore_patterns("catalog.duckdb*"))
        server = subprocess.Popen([sys.executable, "-m", "mlxcore", "ui", str(copy), "--metric", "train.loss",
                                   "--x", "epoch", "--group-by", "config.optimizer.lr,config.optimizer.momentum",
                                   "--logy", "--title", "mlxcore ui: the quickstart's sweep",
                                   "--catalog", str(Path(work) / "catalog.duckdb")],
                                  stdout=subprocess.PIPE, text=True)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--hide-scrollbars", "--window-size=1280,800"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            assert server.stdout is not None
            url = re.search(r"http://\S+", server.stdout.readline()).group(0)  # type: ignore[union-attr]
            driver.get(url)
            WebDriverWait(driver, 30).until(lambda d: d.execute_script(
                "return window.mlxLive !== undefined && window.Bokeh !== undefined && Bokeh.documents.length > 0"))
            box = driver.find_element(By.ID, "sql")
            box.clear()
            box.send_keys(QUERY)
            driver.find_element(By.CSS_SELECTOR, "#sql-form button").click()
            WebDriverWait(driver, 30).until(lambda d: d.execute_script(
                "return document.querySelectorAll('#sql-result tr').length > 1"))
            time.sleep(2.5)  # a poll has come back; the canvas painted
            driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
            for _ in range(3):  # the page's height settles once the plot is drawn at the new size
                full = driver.execute_script("return document.documentElement.scrollHeight")
                # taller than a window may be: the viewport itself is set to the page's height
                driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                       {"width": 1280, "height": full, "deviceScaleFactor": 1, "mobile": False})
                time.sleep(1.0)
            driver.save_screenshot(str(out))
        finally:
            driver.quit()
            server.send_signal(signal.SIGINT)
            server.wait(timeout=20)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:3]))
