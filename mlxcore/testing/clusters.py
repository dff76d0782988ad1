"""A real scheduler on localhost for a plugin's tests: used when it is up, started when the run asks for it.

Every scheduler plugin tests against its real scheduler, and every one faces the same three cases, so they
are decided once here:

- the scheduler already answers: it is used as it is, and left running;
- it does not, and ``CI=true`` or ``MLXCORE_TEST_<NAME>=1`` is set: the plugin's bring-up script starts it
  (root only), the tests FAIL if that does not work, and the down script stops it at the end of the session
  (``MLXCORE_TEST_<NAME>_KEEP=1`` keeps it);
- neither: the cluster tests skip, saying how to get a cluster.

In a plugin's ``conftest.py``::

    CLUSTER = LocalCluster("oar", up=..., down=..., answers=server_up)

    def pytest_sessionfinish(session, exitstatus):
        CLUSTER.finish()

    @pytest.fixture(scope="session")
    def oar_cluster():
        CLUSTER.require()
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest


class LocalCluster:
    def __init__(self, name: str, up: Path, down: Path, answers: Callable[[], bool]) -> None:
        self.name, self.up, self.down, self.answers = name, up, down, answers
        self.variable = f"MLXCORE_TEST_{name.upper()}"
        self.started_here = False
        self._ready = False
        self._error: str | None = None

    def wanted(self) -> bool:
        """The run asks for real-cluster tests: they must run (started here if need be), never skip."""
        return os.environ.get("CI", "").lower() == "true" or os.environ.get(self.variable, "") == "1"

    def ensure(self) -> None:
        """Make sure the cluster answers, once per session; raise :class:`RuntimeError` saying why not."""
        if self._error is not None:
            raise RuntimeError(self._error)
        if self._ready:
            return
        if not self.answers():
            self._error = self._start()
            if self._error is not None:
                raise RuntimeError(self._error)
        self._ready = True

    def _start(self) -> str | None:
        if not self.wanted():
            return (f"no {self.name} cluster answers: start one with {self.up} (as root), or set {self.variable}=1 "
                    f"(or CI=true) to let the tests start it")
        if os.geteuid() != 0:
            return f"the {self.name} cluster is not running and only root can start it ({self.up})"
        try:
            result = subprocess.run([str(self.up)], capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"cannot run {self.up}: {exc}"
        self.started_here = result.returncode == 0
        if result.returncode != 0 or not self.answers():
            return f"{self.up} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
        return None

    def require(self) -> None:
        """The body of a session fixture: the cluster, or a skip (a failure when :meth:`wanted`)."""
        try:
            self.ensure()
        except RuntimeError as exc:
            if self.wanted():
                pytest.fail(f"the local {self.name} cluster is not available: {exc}", pytrace=False)
            pytest.skip(f"real-{self.name} test: {exc}")

    def finish(self) -> None:
        """At the end of the session: stop the cluster if this session started it (unless asked to keep it)."""
        if self.started_here and os.environ.get(f"{self.variable}_KEEP") != "1":
            subprocess.run([str(self.down)], capture_output=True, text=True, timeout=300)
