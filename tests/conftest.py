"""Shared fixtures: a project directory holding a real task script, run in real subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

APPS = Path(__file__).parent / "apps"


@dataclass
class Project:
    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def write_config(self, data: dict, name: str = "config.yaml") -> None:
        path = self.root / "configs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data))

    def command(self, *args: str) -> list[str]:
        return [sys.executable, str(self.root / "main.py"), *args]

    def run(self, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), cwd=self.root, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})

    def start(self, *args: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self.command(*args), cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, **kwargs)

    def info(self, log_id: int) -> dict:
        return yaml.safe_load((self.logs / str(log_id) / "metadata" / "info.yaml").read_text())

    def config(self, log_id: int) -> dict:
        return yaml.safe_load((self.logs / str(log_id) / "metadata" / "config.yaml").read_text())

    def run_ids(self) -> list[int]:
        return sorted(int(p.name) for p in self.logs.iterdir() if p.name.isdigit()) if self.logs.exists() else []


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "project dir"  # a space in the path, on purpose
    root.mkdir()
    shutil.copy(APPS / "app.py", root / "main.py")
    proj = Project(root)
    proj.write_config({"seed": 0, "x": 1, "mode": "ok", "opt": {"lr": 0.1, "name": "sgd"}})
    return proj


@pytest.fixture
def fresh_plugins():
    """A fresh plugin manager for the test; the process-wide one is restored afterwards."""
    from mlxcore import plugins

    previous = plugins.set_plugin_manager(None)
    try:
        yield plugins
    finally:
        plugins.set_plugin_manager(previous)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _chromium_driver():
    """A headless Chromium (Debian's, driven by its chromedriver through Selenium) at 1280x800, logging the
    console and the network; skips without one, and fails under ``CI=true``, where the browser tests must run."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing = "selenium is not installed"
    else:
        if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER):
            options = webdriver.ChromeOptions()
            options.binary_location = CHROMIUM
            for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--window-size=1280,800", "--hide-scrollbars"):
                options.add_argument(arg)
            options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
            return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        missing = f"no {CHROMIUM} or {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run under CI=true: {missing}")
    pytest.skip(missing)


@pytest.fixture(scope="session")
def chromium_driver():
    """``chromium_driver()``: a new headless Chromium (see :func:`_chromium_driver`); the caller quits it."""
    return _chromium_driver
