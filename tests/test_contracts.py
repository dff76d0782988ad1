"""The contract suites of mlxcore.testing pass for the builtins and fail for deliberately broken plugins: a suite
that a broken plugin passes proves nothing.

The builtins run each suite as a plugin author would (a subclass collected by pytest). Each broken plugin is
registered in a fresh plugin manager and the suite's tests are called on it directly; the test passes when
the suite fails (an assertion, or an error the plugin raises), and the same suite test passes the builtin."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from mlxcore import hookimpl, plugins
from mlxcore.loggers.base import RunLogger
from mlxcore.reader.engine import DuckDBReader
from mlxcore.serializers import Serializer
from mlxcore.testing.logger_contract import TRAIN, LoggerContract
from mlxcore.testing.reader_contract import FILTERS, ReaderContract
from mlxcore.testing.serializer_contract import SerializerContract
from mlxcore.testing.version_manager_contract import VersionManagerContract
from mlxcore.version_managers import PreparedCode, VersionManager


# -- the builtins pass -------------------------------------------------------------------------------------
class TestFilesLogger(LoggerContract):
    @pytest.fixture
    def logger_name(self) -> str:
        return "files"


class TestDuckDBReader(ReaderContract):
    @pytest.fixture
    def reader_name(self) -> str:
        return "duckdb"


@pytest.mark.parametrize("name", ["pickle", "dill", "json"])
class TestBuiltinSerializers(SerializerContract):
    @pytest.fixture
    def format_name(self, name: str) -> str:
        return name


# -- broken plugins fail -------------------------------------------------------------------------------------
class DroppingLogger(RunLogger):
    """Loses every seventh row."""

    name = "dropping"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.count = 0

    def log_metrics(self, metrics: dict[str, Any], log_name: str = "metrics") -> None:
        self.count += 1
        if self.count % 7:
            super().log_metrics(metrics, log_name)


class ReorderingLogger(RunLogger):
    """Holds rows back and writes them newest first when the run ends."""

    name = "reordering"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.held: list[tuple[dict[str, Any], str]] = []

    def log_metrics(self, metrics: dict[str, Any], log_name: str = "metrics") -> None:
        self.held.append((metrics, log_name))

    def close(self) -> None:
        for metrics, log_name in reversed(self.held):
            super().log_metrics(metrics, log_name)
        super().close()


class OwnFilesLogger(RunLogger):
    """Writes its streams itself, as JSON lines, without the store: no summaries, so reads parse every row."""

    name = "own_files"

    def log_metrics(self, metrics: dict[str, Any], log_name: str = "metrics") -> None:
        self.paths.metrics.mkdir(exist_ok=True)
        with open(self.paths.stream(log_name), "a") as handle:
            handle.write(json.dumps(metrics) + "\n")


class ForgetfulCheckpointLogger(RunLogger):
    """Says it saved a checkpoint and saves nothing."""

    name = "forgetful"

    def log_checkpoint(self, checkpoint: Any, log_name: str = "checkpoint", artifact_format: str | None = None) -> Path:
        return self.paths.checkpoint(log_name, artifact_format or "pickle")


class LossySerializer(Serializer):
    """Saves only the keys of a mapping."""

    name = "lossy"

    def save(self, obj: Any, file: Any) -> None:
        file.write(json.dumps(list(obj) if isinstance(obj, dict) else obj).encode())

    def load(self, file: Any) -> Any:
        return json.loads(file.read())


class ForgivingSerializer(Serializer):
    """Loads whatever it can: half a file is an empty value, not an error."""

    name = "forgiving"

    def save(self, obj: Any, file: Any) -> None:
        file.write(json.dumps(obj).encode())

    def load(self, file: Any) -> Any:
        try:
            return json.loads(file.read())
        except ValueError:
            return {}


class FilterlessReader(DuckDBReader):
    """Answers every filter with every run."""

    name = "filterless"

    def filter(self, query: str = "", result_format: str = "pandas", columns: Any = None) -> Any:
        return super().filter("", result_format, columns)


class _Plugin:
    def __init__(self, loggers: tuple = (), serializers: tuple = (), readers: tuple = ()) -> None:
        self.loggers, self.serializers, self.readers = loggers, serializers, readers

    @hookimpl
    def register_loggers(self, register: Any) -> None:
        for cls in self.loggers:
            register(cls)

    @hookimpl
    def register_serializers(self, register: Any) -> None:
        for obj in self.serializers:
            register(obj)

    @hookimpl
    def register_readers(self, register: Any) -> None:
        for cls in self.readers:
            register(cls)


@pytest.fixture
def broken(fresh_plugins):
    """The broken plugins, registered in a fresh manager for the test."""
    plugin = _Plugin(loggers=(DroppingLogger, ReorderingLogger, OwnFilesLogger, ForgetfulCheckpointLogger),
                     serializers=(LossySerializer(), ForgivingSerializer()), readers=(FilterlessReader,))
    fresh_plugins.set_plugin_manager(plugins.new_plugin_manager(load_entry_points=False, extra=(("broken", plugin),)))
    return plugin


def fails(call: Any, *args: Any) -> bool:
    """The suite's test fails: an assertion, or an error from the plugin that the suite lets through (as
    pytest would report it)."""
    try:
        call(*args)
    except (Exception, pytest.fail.Exception):  # noqa: BLE001 - any failure is what is expected here
        return True
    return False


@pytest.mark.parametrize(("logger", "test"), [
    ("dropping", "test_every_row_reaches_the_run_directory_once_and_in_order"),
    ("reordering", "test_every_row_reaches_the_run_directory_once_and_in_order"),
    ("reordering", "test_flushed_rows_are_on_disk_while_the_run_goes_on"),
    ("own_files", "test_the_reader_takes_the_summaries_and_leaves_the_rows_for_later"),
    ("forgetful", "test_a_checkpoint_replaces_the_last_and_survives_a_resume"),
])
def test_the_logger_contract_fails_a_broken_logger(broken, tmp_path, logger, test):
    suite = LoggerContract()
    assert fails(getattr(suite, test), tmp_path, logger)
    assert not fails(getattr(suite, test), tmp_path / "builtin", "files")  # the same test passes the builtin


@pytest.mark.parametrize(("name", "test"), [
    ("lossy", "test_each_sample_loads_back_equal"),
    ("forgiving", "test_a_file_cut_short_does_not_load_as_a_value"),
])
def test_the_serializer_contract_fails_a_broken_format(broken, tmp_path, name, test):
    suite = SerializerContract()
    samples = [{"a": 1, "b": [1.5, "x"]}, [1, 2]]
    serializer = plugins.get_plugin_manager().registry("serializers").get(name)
    extra = (tmp_path,) if test.startswith("test_each") else ()
    assert fails(getattr(suite, test), serializer, samples, *extra)
    json_format = plugins.get_plugin_manager().registry("serializers").get("json")
    assert not fails(getattr(suite, test), json_format, samples, *extra)


def test_the_reader_contract_fails_a_reader_that_ignores_the_filter(broken, tmp_path):
    import mlxcore
    from mlxcore.reader.synthetic import write_run
    from mlxcore.testing.reader_contract import _configs, _losses

    suite = ReaderContract()
    logs = tmp_path / "logs"
    for config in _configs():
        write_run(logs, config, {"train": [{"step": s, "loss": v} for s, v in enumerate(_losses(config))]})
    filterless = mlxcore.Reader(logs, reader="filterless")
    builtin = mlxcore.Reader(logs, reader="duckdb")
    queries = [query for query, _ in FILTERS if query]
    assert all(fails(suite.test_a_filter_selects_the_runs_python_would, filterless, q) for q in queries)
    assert not any(fails(suite.test_a_filter_selects_the_runs_python_would, builtin, q) for q in queries)


def test_the_broken_plugins_are_really_broken(broken, tmp_path):
    """Guards the guards: each broken plugin misbehaves as its docstring says."""
    serializer = plugins.get_plugin_manager().registry("serializers").get("forgiving")
    assert serializer.load(io.BytesIO(b'{"a": ')) == {}
    assert len(TRAIN) > 7


class InPlaceVersionManager(VersionManager):
    """Runs the working tree as it is and records only the last commit: uncommitted code runs unrecorded."""

    name = "in_place"

    def prepare(self, script: Path, interactive: bool) -> PreparedCode:
        return PreparedCode(script.parent, script, record={"commit": "HEAD"})


class SnapshotVersionManager(VersionManager):
    """A minimal correct manager for the suite's own check: copies the tree and records the copy's text."""

    name = "snapshot"

    def prepare(self, script: Path, interactive: bool) -> PreparedCode:
        import tempfile

        copy = Path(tempfile.mkdtemp()) / script.name
        copy.write_text(script.read_text())
        return PreparedCode(copy.parent, copy, record={"source": script.read_text()})


class _Committed:
    """The project of the version-manager suite without git: ``committed`` is the text of the last commit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        (root / "main.py").write_text("print('committed')\n")
        self.committed = (root / "main.py").read_text()


@pytest.mark.parametrize(("manager", "failing"), [
    (InPlaceVersionManager(), ["test_the_prepared_code_stays_as_it_was_when_the_tree_changes",
                               "test_uncommitted_code_is_refused_or_named_by_the_record"]),
    (SnapshotVersionManager(), []),
])
def test_the_version_manager_contract_fails_a_manager_that_runs_uncommitted_code(tmp_path, manager, failing):
    suite = VersionManagerContract()
    tests = ["test_a_clean_tree_runs_the_code_its_record_names",
             "test_the_prepared_code_stays_as_it_was_when_the_tree_changes",
             "test_uncommitted_code_is_refused_or_named_by_the_record"]
    for n, name in enumerate(tests):
        project = _Committed(tmp_path / str(n))
        recorded = (lambda prepared, p=project: p.committed) if manager.name == "in_place" else \
            (lambda prepared: prepared.record["source"])
        args = (manager, project.root, recorded) if name != tests[1] else (manager, project.root)
        assert fails(getattr(suite, name), *args) == (name in failing), name
