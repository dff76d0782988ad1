"""Take docs/report.png: the quickstart's report in headless Chromium at 1280 pixels wide.

    bash scripts/quickstart.sh && .venv/bin/python docs/report_screenshot.py

Reads examples/quickstart/report.html (written by the quickstart) and writes docs/report.png; needs Debian's
chromium and chromium-driver and Selenium (the test extra).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(page: Path = ROOT / "examples/quickstart/report.html", out: Path = ROOT / "docs/report.png",
         height: int | None = None) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                "--window-size=1280,800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(page.resolve().as_uri())
        WebDriverWait(driver, 20).until(lambda d: d.execute_script(
            "return window.Bokeh !== undefined && Bokeh.documents.length > 0 && window.mlxReport !== undefined"))
        time.sleep(1.0)  # the canvas paints after the document is idle
        full = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, height or full)
        time.sleep(1.0)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:3]))
