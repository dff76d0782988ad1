"""Clear errors on the REAL local OAR: no oarsub, root refused, requests and directives OAR refuses.

Every refused submission must leave no run directory behind (no run SUBMITTED for a job that does not exist).
"""

from __future__ import annotations

import os
import sys

import pytest
from oar_testlib import run_dirs

pytestmark = pytest.mark.usefixtures("oar_cluster")


def test_no_oarsub_on_path_is_explained(launch, logs, tmp_path):
    empty = tmp_path / "bin"  # a real PATH without OAR's tools (the job user's python is given by full path)
    empty.mkdir()
    result = launch("x=1", check=False, env={"PATH": str(empty)})
    assert result.returncode == 2, result.stderr
    assert "'oarsub' not found on PATH" in result.stderr and "apt-get install oar-user" in result.stderr
    assert run_dirs(logs) == []


def test_a_submission_as_root_is_refused_with_an_explanation(project, logs):
    if os.geteuid() != 0:
        pytest.skip("OAR refuses root's submissions; these tests do not run as root")
    from oar_testlib import run

    result = run([sys.executable, str(project / "main.py"), "x=1", "+mlx.use_scheduler=true"], project, check=False)
    assert result.returncode == 2, result.stderr
    assert "OAR does not run jobs for root" in result.stderr and "runuser -u USER" in result.stderr
    assert "root and oar users are not allowed to submit jobs" in result.stderr  # OAR's own words, quoted
    assert run_dirs(logs) == []


@pytest.mark.parametrize("sweep, refusal", [
    (["x=1", "+mlx.scheduler.array=false"], "OAR refused the job (OAR_JOB_ID=-5, oarsub exit 8)"),
    (["x=1,2"], "oarsub refused the submission (exit 251)"),  # an array is refused by another path of oarsub
])
def test_a_resource_request_oar_refuses_is_quoted(launch, logs, sweep, refusal):
    result = launch(*sweep, "+mlx.scheduler.gpus=1", check=False)  # this node has no gpu resources
    assert result.returncode == 2, result.stderr
    assert refusal in result.stderr
    assert 'column "gpu" does not exist' in result.stderr  # OAR's own words
    assert run_dirs(logs) == []


@pytest.mark.parametrize("option, oar_says", [
    ("-t nosuchtype", "[ADMISSION RULE] Error: unknown job type: nosuchtype"),
    ("-I", "Not able to scan file line: #OAR -I."),
])
def test_a_directive_oar_refuses_is_quoted(launch, logs, option, oar_says):
    result = launch("x=1", f'+mlx.scheduler.options=["{option}"]', "+mlx.scheduler.array=false", check=False)
    assert result.returncode == 2, result.stderr
    assert "oarsub refused the submission" in result.stderr and oar_says in result.stderr
    assert run_dirs(logs) == []
