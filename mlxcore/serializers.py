"""Artifact formats: how an object becomes bytes in ``artifacts/<format>/<name>`` and back.

A serializer works on open binary files, so the logger can write to a temporary file and rename it (a crash
never leaves half an artifact). Third parties add formats with the ``register_serializers`` hook.

Trust model: formats ``json`` and ``numpy`` (loaded with ``allow_pickle=False``) never execute code when
loading. ``pickle``, ``dill`` and ``torch`` do, by design of those formats; mlxcore only ever loads such a file
when the user asks for that artifact or checkpoint by name, and only from inside that run's own directory. No
code is stored in a log directory by mlxcore itself (``register_artifact_type`` keeps its functions in memory, see
:mod:`mlxcore.builtins.artifact_types`).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from typing import Any, BinaryIO


class Serializer:
    """Base class: set :attr:`name`, implement :meth:`save` and :meth:`load`."""

    name: str = ""

    def save(self, obj: Any, file: BinaryIO) -> None:
        raise NotImplementedError

    def load(self, file: BinaryIO) -> Any:
        raise NotImplementedError


class PickleSerializer(Serializer):
    name = "pickle"

    def save(self, obj: Any, file: BinaryIO) -> None:
        pickle.dump(obj, file, protocol=pickle.HIGHEST_PROTOCOL)

    def load(self, file: BinaryIO) -> Any:
        return pickle.load(file)


class DillSerializer(Serializer):
    """Pickle that also handles lambdas, closures and classes defined in ``__main__``."""

    name = "dill"

    def save(self, obj: Any, file: BinaryIO) -> None:
        import dill

        dill.dump(obj, file, recurse=True)

    def load(self, file: BinaryIO) -> Any:
        import dill

        return dill.load(file)


class JsonSerializer(Serializer):
    name = "json"

    def save(self, obj: Any, file: BinaryIO) -> None:
        file.write(json.dumps(obj, default=to_builtin, indent=1).encode())

    def load(self, file: BinaryIO) -> Any:
        return json.loads(file.read())


class NumpySerializer(Serializer):
    """One array in ``.npy`` format; loading never unpickles."""

    name = "numpy"

    def save(self, obj: Any, file: BinaryIO) -> None:
        import numpy as np

        array = np.asarray(obj)
        if array.dtype == object:
            raise TypeError("the numpy format stores numeric arrays only; use 'pickle' for object arrays")
        np.save(file, array, allow_pickle=False)

    def load(self, file: BinaryIO) -> Any:
        import numpy as np

        return np.load(file, allow_pickle=False)


class TorchSerializer(Serializer):
    """``torch.save``/``torch.load``: tensors, state dicts, whole checkpoints (registered when torch is installed)."""

    name = "torch"

    def save(self, obj: Any, file: BinaryIO) -> None:
        import torch

        torch.save(obj, file)

    def load(self, file: BinaryIO) -> Any:
        import torch

        return torch.load(file, weights_only=False)


class FunctionSerializer(Serializer):
    """A format made of two functions ``save(obj, path)`` and ``load(path)`` (``register_artifact_type``).

    The logger opens the file by path, so ``file.name`` is the path the functions are given."""

    def __init__(self, name: str, save: Callable[[Any, str], None], load: Callable[[str], Any]) -> None:
        self.name = name
        self._save = save
        self._load = load

    def save(self, obj: Any, file: BinaryIO) -> None:
        self._save(obj, file.name)

    def load(self, file: BinaryIO) -> Any:
        return self._load(file.name)


def to_builtin(value: Any) -> Any:
    """``json``'s ``default=`` hook: numpy and torch scalars, 0-d arrays and small arrays become Python values.

    :raises TypeError: for anything else (the caller names the key).
    """
    item = getattr(value, "item", None)
    if item is not None and callable(item):
        size = getattr(value, "size", None)
        numel = getattr(value, "numel", None)
        n = numel() if callable(numel) else size
        if n == 1 or n is None:
            return item()
    tolist = getattr(value, "tolist", None)
    if tolist is not None and callable(tolist):
        return tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__module__}.{type(value).__qualname__} is not JSON-serialisable")
