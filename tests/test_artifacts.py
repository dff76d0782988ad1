"""Artifacts and checkpoints: round trips per format, atomic writes, names that cannot escape the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlxcore import hookimpl, open_run
from mlxcore.errors import ArtifactError, CheckpointNotFoundError, ConfigError, UnknownChoiceError
from mlxcore.loggers.files import FileLogger
from mlxcore.serializers import Serializer
from mlxcore.settings import LoggerSettings
from mlxcore.store import RunStore


def _logger(tmp_path: Path, forced: int | None = None) -> FileLogger:
    """A new run's logger; with ``forced``, a second view of run ``forced`` (what another process reading it sees)."""
    if forced is not None:
        return FileLogger.attach(RunStore(tmp_path).open(forced), LoggerSettings())
    return open_run(tmp_path).logger


@pytest.mark.parametrize("fmt, obj", [
    ("pickle", {"a": [1, 2], "b": (3, "x")}),
    ("dill", {"f": None}),
    ("json", {"a": [1, 2.5, "s"], "b": None}),
])
def test_round_trip(tmp_path, fmt, obj):
    logger = _logger(tmp_path)
    path = logger.log_artifacts(obj, "thing", artifact_format=fmt)
    assert path == tmp_path / "1" / "artifacts" / fmt / "thing"
    assert logger.load_artifacts("thing") == obj
    assert _logger(tmp_path, forced=1).load_artifacts("thing", fmt) == obj  # from a new process's view


def test_dill_keeps_lambdas(tmp_path):
    logger = _logger(tmp_path)
    logger.log_artifacts(lambda x: x * 3, "fn", "dill")
    assert logger.load_artifacts("fn")(2) == 6


def test_numpy_round_trip_never_unpickles(tmp_path):
    np = pytest.importorskip("numpy")
    logger = _logger(tmp_path)
    logger.log_artifacts(np.arange(6).reshape(2, 3), "arr", "numpy")
    assert (logger.load_artifacts("arr") == np.arange(6).reshape(2, 3)).all()
    with pytest.raises(ArtifactError, match="numeric arrays only"):
        logger.log_artifacts(np.array([object()]), "obj", "numpy")
    assert not (tmp_path / "1" / "artifacts" / "numpy" / "obj").exists()


def test_torch_round_trip_when_installed(tmp_path):
    torch = pytest.importorskip("torch")
    logger = _logger(tmp_path)
    logger.log_checkpoint({"w": torch.ones(3)}, "ckpt", artifact_format="torch")
    assert torch.equal(logger.load_checkpoint("ckpt")["w"], torch.ones(3))


def test_a_failed_save_leaves_no_file_and_keeps_the_previous_one(tmp_path):
    logger = _logger(tmp_path)
    logger.log_checkpoint({"epoch": 1}, "ckpt")

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle me")

    with pytest.raises(ArtifactError, match="cannot pickle me"):
        logger.log_checkpoint({"epoch": 2, "bad": Unpicklable()}, "ckpt")
    files = os.listdir(tmp_path / "1" / "checkpoints")
    assert files == ["ckpt.pickle"]
    assert logger.load_checkpoint("ckpt") == {"epoch": 1}


def test_checkpoint_format_can_change_and_latest_wins(tmp_path):
    logger = _logger(tmp_path)
    logger.log_checkpoint({"epoch": 1}, "ckpt")
    logger.log_checkpoint({"epoch": 2}, "ckpt", artifact_format="json")
    assert os.listdir(tmp_path / "1" / "checkpoints") == ["ckpt.json"]
    assert logger.load_checkpoint("ckpt") == {"epoch": 2}


def test_missing_checkpoint_raises_unless_a_default_is_given(tmp_path):
    logger = _logger(tmp_path)
    with pytest.raises(CheckpointNotFoundError):
        logger.load_checkpoint("nothing")
    assert logger.load_checkpoint("nothing", default=None) is None


def test_names_cannot_leave_the_run_directory(tmp_path):
    logger = _logger(tmp_path)
    for name in ("../../etc/passwd", "/abs", "a/../../b", ".."):
        with pytest.raises(ConfigError):
            logger.log_artifacts(1, name)
        with pytest.raises(ConfigError):
            logger.load_checkpoint(name)


def test_a_symlink_planted_in_the_run_is_refused(tmp_path):
    logger = _logger(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "ckpt.pickle").write_bytes(b"not yours")
    (tmp_path / "1" / "checkpoints").symlink_to(outside)
    with pytest.raises(ArtifactError, match="outside"):
        logger.load_checkpoint("ckpt")


def test_unknown_format_lists_the_valid_ones(tmp_path):
    with pytest.raises(UnknownChoiceError, match="pickle"):
        _logger(tmp_path).log_artifacts(1, "x", "yaml")


@pytest.fixture
def artifact_types(fresh_plugins):
    """The formats a test registers at run time are forgotten after it."""
    from mlxcore.builtins import artifact_types

    yield artifact_types
    artifact_types._FORMATS.clear()


def _text_format():
    return (lambda obj, path: Path(path).write_text(obj)), (lambda path: Path(path).read_text())


def test_register_artifact_type_stores_no_code(tmp_path, artifact_types):
    logger = _logger(tmp_path)
    logger.register_artifact_type("text", *_text_format())
    logger.log_artifacts("hello", "greeting", "text")
    assert logger.load_artifacts("greeting") == "hello"
    stored = list((tmp_path / "1" / "artifacts").rglob("*"))
    assert [p.name for p in stored if p.is_file()] == ["greeting"]


def test_a_registered_artifact_type_goes_through_the_serializers_hook(tmp_path, artifact_types, fresh_plugins):
    """The format is a plugin's like any other: in the registry, shown by ``mlxcore plugins``, found by another
    run's logger in the same process (a sweep run in process registers it once)."""
    _logger(tmp_path).register_artifact_type("text", *_text_format())
    manager = fresh_plugins.get_plugin_manager()
    assert "text" in manager.registry("serializers")
    assert manager.infos["artifact_types"].registered["serializers"] == ["text"]
    second = _logger(tmp_path)
    second.log_artifacts("hi", "greeting", "text")
    assert second.load_artifacts("greeting", "text") == "hi"
    second.register_artifact_type("text", lambda obj, path: Path(path).write_text(obj * 2), _text_format()[1])
    second.log_artifacts("hi", "twice", "text")  # registering the name again replaces the functions
    assert second.load_artifacts("twice") == "hihi"
    assert manager.registry("serializers").names().count("text") == 1


@pytest.mark.parametrize("name, message", [
    ("pickle", "already provided by builtin plugin 'serializers'"),
    ("Text", "not a valid name"),
    ("../x", "not a valid name"),
])
def test_a_registered_artifact_type_cannot_take_a_plugin_format_or_a_bad_name(tmp_path, artifact_types, name,
                                                                               message):
    logger = _logger(tmp_path)
    with pytest.raises(ConfigError, match=message):
        logger.register_artifact_type(name, *_text_format())
    logger.log_artifacts({"a": 1}, "still_pickle", "pickle")  # the plugin's format is untouched
    assert logger.load_artifacts("still_pickle") == {"a": 1}


class _UpperSerializer(Serializer):
    name = "upper"

    def save(self, obj, file):
        file.write(obj.upper().encode())

    def load(self, file):
        return file.read().decode()


class _UpperPlugin:
    @hookimpl
    def register_serializers(self, register):
        register(_UpperSerializer())


def test_a_third_party_serializer_registers_a_format(tmp_path, fresh_plugins):
    fresh_plugins.set_plugin_manager(fresh_plugins.new_plugin_manager(load_entry_points=False, extra=(("upper", _UpperPlugin()),)))
    logger = _logger(tmp_path)
    logger.log_artifacts("shout", "word", "upper")
    assert logger.load_artifacts("word") == "SHOUT"
