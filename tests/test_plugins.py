"""Plugins: real entry points of real (throw-away) distributions, isolation of broken ones, the CLI listing."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlxcore import hookspecs
from mlxcore.errors import UnknownChoiceError

GOOD = '''
from mlxcore import hookimpl
from mlxcore.schedulers.local import LocalScheduler

class EchoScheduler(LocalScheduler):
    name = "echo"

@hookimpl
def register_schedulers(register):
    register(EchoScheduler)

@hookimpl
def register_commands(cli):
    @cli.command()
    def hello():
        """Say hello."""
        print("hello from a plugin")
'''


def _distribution(site: Path, dist: str, module: str, source: str) -> None:
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.2.dist-info"  # wheels normalise the folder name
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(f"[mlxcore]\n{module} = {module}\n")


def _cli(site: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), **(env or {})}
    return subprocess.run([sys.executable, "-m", "mlxcore", *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    return site


def test_builtins_are_listed_as_plugins(site):
    rows = json.loads(_cli(site, "plugins", "--all", "--json").stdout)
    by_name = {row["name"]: row for row in rows}
    assert by_name["files_logger"]["registered"] == {"loggers": ["files"]}
    assert by_name["local_scheduler"]["registered"] == {"schedulers": ["local"]}
    assert {"pickle", "dill", "json"} <= set(by_name["serializers"]["registered"]["serializers"])
    builtins = {name for name, row in by_name.items() if row["builtin"]}
    assert {"files_logger", "local_scheduler", "serializers", "commands"} <= builtins
    listed = json.loads(_cli(site, "plugins", "--json").stdout)
    assert not any(row["builtin"] for row in listed)  # without --all: external plugins only


def test_an_entry_point_plugin_is_loaded_and_listed(site):
    _distribution(site, "mlxcore-echo", "mlx_echo", GOOD)
    rows = [r for r in json.loads(_cli(site, "plugins", "--json").stdout) if r["name"] == "mlx_echo"]
    assert rows == [{
        "name": "mlx_echo", "builtin": False, "distribution": "mlxcore-echo", "version": "1.2",
        "hooks": ["register_commands", "register_schedulers"],
        "registered": {"schedulers": ["echo"], "commands": ["hello"]}, "error": None,
        "kinds": ["commands", "schedulers"], "interfaces": {"schedulers": {"echo": "0.2"}},
    }]
    assert _cli(site, "hello").stdout == "hello from a plugin\n"
    table = _cli(site, "plugins").stdout
    assert "mlx_echo" in table and "mlxcore-echo 1.2" in table


def test_broken_plugins_are_reported_never_fatal(site):
    _distribution(site, "mlxcore-echo", "mlx_echo", GOOD)
    _distribution(site, "broken-import", "mlx_broken", "import no_such_module_here\n")
    _distribution(site, "bad-hook", "mlx_typo", "from mlxcore import hookimpl\n@hookimpl\ndef register_schedulrs(register):\n    pass\n")
    _distribution(site, "thief", "mlx_thief", "from mlxcore import hookimpl\nfrom mlxcore.serializers import PickleSerializer\n"
                  "@hookimpl\ndef register_serializers(register):\n    register(PickleSerializer())\n")
    result = _cli(site, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    errors = {row["name"]: row["error"] for row in json.loads(result.stdout)}
    assert errors["mlx_echo"] is None
    assert "cannot import" in errors["mlx_broken"] and "no_such_module_here" in errors["mlx_broken"]
    assert "register_schedulrs" in errors["mlx_typo"]
    assert "'pickle' is registered twice" in errors["mlx_thief"]
    assert "builtin plugin 'serializers'" in errors["mlx_thief"] and "thief 1.2" in errors["mlx_thief"]
    assert _cli(site, "hello").returncode == 0  # the good plugin still works


def test_strict_mode_turns_a_broken_plugin_into_an_error(site):
    _distribution(site, "broken-import", "mlx_broken", "import no_such_module_here\n")
    result = _cli(site, "plugins", env={"MLXCORE_STRICT_PLUGINS": "1"})
    assert result.returncode == 2
    assert result.stderr.startswith("mlxcore: error: plugin 'mlx_broken'") and result.stderr.count("\n") == 1


def test_a_plugin_scheduler_is_selectable_by_name(site, fresh_plugins, monkeypatch):
    _distribution(site, "mlxcore-echo", "mlx_echo", GOOD)
    monkeypatch.syspath_prepend(str(site))
    import importlib.metadata

    importlib.invalidate_caches()
    assert importlib.metadata.distribution("mlxcore-echo").version == "1.2"
    assert fresh_plugins.get_scheduler_class("echo").__name__ == "EchoScheduler"
    with pytest.raises(UnknownChoiceError, match="valid: echo, local"):
        fresh_plugins.get_scheduler_class("ech")


def test_importing_and_listing_plugins_stays_light(site):
    heavy = ("hydra", "omegaconf", "duckdb", "pandas", "numpy", "git", "sqlglot")
    code = ("import sys\nfrom mlxcore.cli import main\nsys.argv = ['mlxcore', 'plugins', '--all']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY', sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip().endswith("HEAVY []"), out
    code = f"import sys, mlxcore; print(sorted(m for m in {heavy!r} + ('click', 'rich') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_every_hook_is_documented_with_its_parameter():
    specs = [f for name, f in vars(hookspecs).items() if name.startswith("register_")]
    assert len(specs) == 7
    for spec in specs:
        param = next(iter(inspect.signature(spec).parameters))
        assert spec.__doc__ and f":param {param}:" in spec.__doc__, spec.__name__


def test_version_command(site):
    result = _cli(site, "version")
    assert result.returncode == 0 and result.stdout.startswith("mlxcore 0.1.0\npython ")
