"""mlxcore's scheduler contract, passed by the oar scheduler on the REAL local OAR (as the job user)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from oar_testlib import Submitter

from mlxcore.testing import SchedulerContract


class TestOarContract(SchedulerContract):
    @pytest.fixture
    def scheduler_settings(self):
        return {"name": "oar", "time": 10}

    @pytest.fixture
    def contract_root(self, submitter: Submitter, request) -> Path:
        root = submitter.root / f"contract-{request.node.name}"
        root.mkdir()
        if submitter.owner:
            shutil.chown(root, submitter.owner, submitter.owner)
        return root

    @pytest.fixture
    def launch_prefix(self, submitter: Submitter) -> list[str]:
        return submitter.prefix

    @pytest.fixture
    def python(self, submitter: Submitter) -> str:
        return submitter.python

    @pytest.fixture
    def job_timeout(self) -> float:
        return 90.0  # OAR's server may wait 10 s between scheduling passes
