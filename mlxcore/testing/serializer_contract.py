"""A contract test suite any serializer (artifact format) plugin runs against itself (opt-in, needs pytest).

Subclass :class:`SerializerContract` and give the plugin's format name and values it must round-trip::

    from mlxcore.testing import SerializerContract

    class TestMyFormat(SerializerContract):
        @pytest.fixture
        def format_name(self):
            return "yaml"

        @pytest.fixture
        def samples(self):
            return [{"a": 1}, [1, 2, 3], "text"]

Checked: the format is registered under a name the logger accepts; each sample saved to a file and loaded back
(in this process and in a new one) equals what was saved; a file cut short does not load as a value.
"""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

_LOAD_ELSEWHERE = """
import pickle, sys
from mlxcore.plugins import get_plugin_manager
serializer = get_plugin_manager().registry("serializers").get(sys.argv[1])
with open(sys.argv[2], "rb") as handle:
    value = serializer.load(handle)
sys.stdout.buffer.write(pickle.dumps(value))
"""


class SerializerContract:
    """Behaviour every artifact format must show."""

    @pytest.fixture
    def format_name(self) -> str:
        raise NotImplementedError("override the format_name fixture")

    @pytest.fixture
    def samples(self) -> list[Any]:
        """Values the format must round-trip (override with what it is for)."""
        return [{"a": 1, "b": [1.5, "x", None, True]}, [1, 2, 3], "text é", 12345678901234567890, 0.1]

    @pytest.fixture
    def serializer(self, format_name: str) -> Any:
        from ..plugins import get_plugin_manager
        from ..serializers import Serializer

        registry = get_plugin_manager().registry("serializers")
        assert format_name in registry.names(), f"{format_name!r} is not registered; formats: {registry.names()}"
        found = registry.get(format_name)
        assert isinstance(found, Serializer), "a serializer is a mlxcore.serializers.Serializer instance"
        assert found.name == format_name
        return found

    @staticmethod
    def equal(a: Any, b: Any) -> bool:
        """How loaded and saved values are compared (override for types without ``==``, e.g. arrays)."""
        return bool(a == b) and type(a) is type(b)

    # -- the contract ------------------------------------------------------------------------------------
    def test_each_sample_loads_back_equal(self, serializer: Any, samples: list[Any], tmp_path: Path) -> None:
        for n, sample in enumerate(samples):
            path = tmp_path / f"sample{n}"
            with open(path, "wb") as handle:
                serializer.save(sample, handle)
            with open(path, "rb") as handle:
                loaded = serializer.load(handle)
            assert self.equal(loaded, sample), f"{sample!r} loads back as {loaded!r}"

    def test_another_process_loads_what_this_one_saved(self, serializer: Any, samples: list[Any],
                                                        format_name: str, tmp_path: Path) -> None:
        path = tmp_path / "sample"
        with open(path, "wb") as handle:
            serializer.save(samples[0], handle)
        out = subprocess.run([sys.executable, "-c", _LOAD_ELSEWHERE, format_name, str(path)], capture_output=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr.decode(errors="replace")
        loaded = pickle.loads(out.stdout)
        assert self.equal(loaded, samples[0]), f"{samples[0]!r} loads back elsewhere as {loaded!r}"

    def test_a_file_cut_short_does_not_load_as_a_value(self, serializer: Any, samples: list[Any]) -> None:
        buffer = io.BytesIO()
        serializer.save(samples[0], buffer)
        data = buffer.getvalue()
        assert data, "save wrote nothing"
        try:
            loaded = serializer.load(io.BytesIO(data[: len(data) // 2]))
        except Exception:  # noqa: BLE001 - any error is the right answer: the format is not ours to name
            return
        assert not self.equal(loaded, samples[0]), "half a file loads as the whole value"
        pytest.fail(f"half a file loads as {loaded!r} instead of raising")
