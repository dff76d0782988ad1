"""The example third-party scheduler passes the scheduler contract; schedulers written for interface 0.1 still load.

Nothing is pip-installed. The example package (``examples/third_party_scheduler``) is registered in this process
through a fresh plugin manager (status and cancel are asked here), and the submitting subprocesses find it
through a throwaway distribution whose entry point is the one of the example's own ``pyproject.toml``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from mlxcore.errors import PluginError
from mlxcore.schedulers.base import JobSpec, JobStatus, Scheduler, Submission
from mlxcore.schedulers.compat import LegacyJobEnvironment
from mlxcore.schedulers.script import render_script
from mlxcore.testing import SchedulerContract

EXAMPLE = Path(__file__).parents[1] / "examples" / "third_party_scheduler"


def distribution(site: Path, project_file: Path) -> None:
    """A ``.dist-info`` in ``site`` declaring the entry points of ``project_file`` (what pip would write)."""
    text = project_file.read_text()
    name, version = (re.search(rf'^{key} = "([^"]+)"', text, re.M).group(1) for key in ("name", "version"))
    section = re.search(r"^\[project\.entry-points\.mlxcore\]\n((?:[^\[\n].*\n?)*)", text, re.M).group(1)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[mlxcore]\n" + section.replace('"', ""))  # TOML strings -> ini


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    distribution(site, EXAMPLE / "pyproject.toml")
    return site


class TestExampleScheduler(SchedulerContract):
    @pytest.fixture(autouse=True)
    def example_plugin(self, site, tmp_path, monkeypatch, fresh_plugins):
        paths = [str(EXAMPLE), str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))  # the submitting processes load the entry point
        monkeypatch.setenv("PIDFILE_STATE", str(tmp_path / "pidfile state"))
        monkeypatch.syspath_prepend(str(EXAMPLE))
        import mlx_pidfile

        fresh_plugins.set_plugin_manager(fresh_plugins.new_plugin_manager(extra=(("mlx_pidfile", mlx_pidfile),)))

    @pytest.fixture
    def scheduler_settings(self):
        return {"name": "pidfile"}

    @pytest.fixture
    def job_timeout(self):
        return 60.0


def test_the_example_scheduler_is_small():
    assert len((EXAMPLE / "mlx_pidfile" / "scheduler.py").read_text().splitlines()) <= 60


# -- interface 0.1 --------------------------------------------------------------------------------------------
LEGACY = '''
from mlxcore import hookimpl
from mlxcore.schedulers.base import Scheduler

class OldScheduler(Scheduler):
    """Written for interface 0.1: class flags, submit_argv and parse_job_ids."""
    name = "old"
    directive_prefix = "#OLD"
    job_id_variable = "OLD_JOB_ID"
    array_index_variable = "OLD_INDEX"
    array_first_index = 1
    array_job_in_arguments = True
    restarts_under_new_id = True

    def directives(self, submission):
        return []

    def submit_argv(self, submission):
        return ["true"]

    def parse_job_ids(self, output, submission):
        return ["1"]

    def status(self, job_ids):
        return {}

    def cancel(self, job_ids):
        pass

    def preempted_lines(self, submission):
        return ["exit 99"]

@hookimpl
def register_schedulers(register):
    register(OldScheduler)
'''


def legacy_class() -> type[Scheduler]:
    namespace: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(LEGACY, "mlx_old.py", "exec"), namespace)  # what importing the plugin module does
    assert any("0.1 interface" in str(w.message) and issubclass(w.category, DeprecationWarning) for w in caught)
    return namespace["OldScheduler"]


def test_a_scheduler_written_for_interface_0_1_is_translated(tmp_path):
    old = legacy_class()()
    assert type(old).interface_version == "0.1"
    environment = old.job_environment()
    assert isinstance(environment, LegacyJobEnvironment)
    assert (environment.job_id_variable, environment.array_index_variable, environment.array_first_index) == (
        "OLD_JOB_ID", "OLD_INDEX", 1)
    assert old.use_array
    jobs = [JobSpec(i, tmp_path / str(i), ["true"], tmp_path, f"j{i}") for i in (1, 2)]
    text = render_script(old, Submission(jobs, tmp_path / "job.sh", True), None)
    assert 'run_dir=$1; shift; command=("$@")' in text  # array_job_in_arguments
    assert 'echo "${OLD_JOB_ID:-}" >>"$run_dir/metadata/job_ids"' in text  # restarts_under_new_id
    assert 'export MLXCORE_JOB_ID="${OLD_JOB_ID:-}"' in text
    assert "  exit 99" in text  # preempted_lines became the requeue lines
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)


def test_mlxcore_plugins_shows_hook_kinds_and_interface_versions(tmp_path):
    site = tmp_path / "site"
    (site / "mlx_old").mkdir(parents=True)
    (site / "mlx_old" / "__init__.py").write_text(LEGACY)
    project = tmp_path / "pyproject.toml"
    project.write_text('[project]\nname = "mlxcore-old"\nversion = "0.1.0"\n\n'
                       '[project.entry-points.mlxcore]\nold = "mlx_old"\n')
    distribution(site, project)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(EXAMPLE)])}
    distribution(site, EXAMPLE / "pyproject.toml")
    listing = subprocess.run([sys.executable, "-m", "mlxcore", "plugins", "--json"], env=env, capture_output=True,
                             text=True, timeout=60)
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    assert rows["old"]["error"] is None and rows["old"]["kinds"] == ["schedulers"]
    assert rows["old"]["interfaces"] == {"schedulers": {"old": "0.1"}}
    assert rows["pidfile"]["interfaces"] == {"schedulers": {"pidfile": "0.2"}}
    table = subprocess.run([sys.executable, "-m", "mlxcore", "plugins"], env=env, capture_output=True, text=True,
                           timeout=60).stdout
    assert "interface 0.1" in table and "interface 0.2" in table


FLAGS_AND_ENVIRONMENT = """
job_id_variable = 'X'
def submit(self, submission):
    return []
def job_environment(self):
    return super().job_environment()
"""


@pytest.mark.parametrize(("body", "message"), [
    ("pass", "cannot submit: implement submit(submission)"),
    ("def submit_argv(self, submission):\n    return ['true']", "or both submit_argv() and parse_job_ids()"),
    (FLAGS_AND_ENVIRONMENT, "move job_id_variable into the JobEnvironment"),
])
def test_a_scheduler_that_cannot_work_fails_when_loaded_in_one_line(body, message):
    source = textwrap.dedent("""
        class Broken(Scheduler):
            name = 'broken'
            def status(self, job_ids):
                return {}
            def cancel(self, job_ids):
                pass
        """) + textwrap.indent(body, "    ")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(PluginError, match=re.escape(message)) as raised:
            exec(source, {"Scheduler": Scheduler})  # a plugin module's class statement
    assert "\n" not in str(raised.value)


def test_submit_argv_and_parse_job_ids_are_optional_when_submit_is_overridden():
    class Direct(Scheduler):
        name = "direct"

        def submit(self, submission: Submission) -> list[str]:
            return ["1"]

        def status(self, job_ids: list[str]) -> dict[str, JobStatus]:
            return {}

        def cancel(self, job_ids: list[str]) -> None:
            pass

    assert Direct().interface_version == "0.2" and not Direct().use_array  # no array variable: one job per point


# -- the contract fails broken schedulers ----------------------------------------------------------------------
BROKEN_PLUGIN = '''
import dataclasses
import os

import mlx_pidfile.scheduler as example

from mlxcore import hookimpl, store
from mlxcore.schedulers.base import JobStatus


class Broken(example.PidfileScheduler):
{body}


@hookimpl
def register_schedulers(register):
    register(Broken)
'''

#: run as a plugin author would: the broken plugin is installed (an entry point), so the submitting processes
#: use its submit and job environment, and this process its status and cancel
BROKEN_SUITE = '''
import mlx_pidfile.scheduler as example
import pytest

from mlxcore.testing import SchedulerContract


class TestBroken(SchedulerContract):
    @pytest.fixture(autouse=True)
    def pidfile_state(self, tmp_path, monkeypatch):
        monkeypatch.setenv("PIDFILE_STATE", str(tmp_path / "state"))
        yield
        example.PidfileScheduler().cancel([p.stem for p in (tmp_path / "state").glob("*.pid")])  # none left running

    @pytest.fixture
    def scheduler_settings(self):
        return {"name": "pidfile"}

    @pytest.fixture
    def job_timeout(self):
        return 15.0
'''

#: broken variant -> (the methods it overrides, the contract test that must fail)
BROKEN = {
    "cancel_leaves_the_job_running": ("def cancel(self, job_ids):\n    pass", "test_a_cancelled_job_is_cancelled"),
    "status_is_always_empty": ("def status(self, job_ids):\n    return {}", "test_status_names_a_running_job_running"),
    "status_is_wrong": ("def status(self, job_ids):\n    return {i: JobStatus(i, store.COMPLETE) for i in job_ids}",
                        "test_status_names_a_running_job_running"),
    # an array of three whose last two tasks never start (their ids are made up): their runs never complete
    "loses_array_tasks": ("def submit(self, submission):\n"
                          "    first = super().submit(dataclasses.replace(submission, jobs=submission.jobs[:1]))\n"
                          "    return first + [os.urandom(6).hex() for _ in submission.jobs[1:]]",
                          "test_a_sweep_is_submitted_and_completes"),
    # every task of the array reads the first point's arguments: point 1 runs thrice, points 2 and 3 never
    "array_index_ignored": ("def job_environment(self):\n"
                            "    return dataclasses.replace(super().job_environment(), "
                            "array_index_variable='ZERO_INDEX')\n"
                            "def submit(self, submission):\n"
                            "    submission.env['ZERO_INDEX'] = '0'\n"
                            "    return super().submit(submission)",
                            "test_a_sweep_is_submitted_and_completes"),
}


def run_contract(tmp_path: Path, body: str, contract_test: str) -> subprocess.CompletedProcess:
    """One contract test, in its own pytest, against the example scheduler changed by ``body`` (installed)."""
    site = tmp_path / "site"
    (site / "broken_pidfile-0.dist-info").mkdir(parents=True)
    (site / "broken_pidfile-0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-pidfile\n"
                                                                  "Version: 0\n")
    (site / "broken_pidfile-0.dist-info" / "entry_points.txt").write_text("[mlxcore]\nbroken = broken_pidfile\n")
    (site / "broken_pidfile.py").write_text(BROKEN_PLUGIN.format(body=textwrap.indent(body, "    ")))
    suite = tmp_path / "test_contract.py"
    suite.write_text(BROKEN_SUITE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLE), str(site)])}
    return subprocess.run([sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "-k", contract_test, "--rootdir", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_the_contract_fails_a_broken_scheduler(broken, tmp_path):
    result = run_contract(tmp_path, *BROKEN[broken])
    assert result.returncode == 1 and "1 failed" in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]


@pytest.mark.parametrize("contract_test", sorted({test for _, test in BROKEN.values()}))
def test_the_same_harness_passes_the_unbroken_scheduler(contract_test, tmp_path):
    """Guards the guards: each failure above comes from the break, not from the way the suite is run."""
    result = run_contract(tmp_path, "pass", contract_test)
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]
