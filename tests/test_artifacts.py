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


def test_register_artifact_type_stores_no_code(tmp_path):
    logger = _logger(tmp_path)
    logger.register_artifact_type("text", lambda obj, path: Path(path).write_text(obj), lambda path: Path(path).read_text())
    logger.log_artifacts("hello", "greeting", "text")
    assert logger.load_artifacts("greeting") == "hello"
    stored = list((tmp_path / "1" / "artifacts").rglob("*"))
    assert [p.name for p in stored if p.is_file()] == ["greeting"]


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
