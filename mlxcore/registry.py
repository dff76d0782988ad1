"""Named registries of what plugins provide (loggers, schedulers, serializers, ...).

The core owns the names: a plugin hands over an object, the registry checks its name, remembers which plugin
provided it (so that a collision can name both distributions) and later creates nothing by dotted path —
only by a registered name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .errors import PluginError, UnknownChoiceError

T = TypeVar("T")

_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")


def valid_name(name: str) -> bool:
    """A registered name: lower-case letters, digits, ``_`` and ``-``, starting with a letter."""
    return bool(_NAME.match(name))


@dataclass(frozen=True)
class Provider:
    """Who registered an entry: the plugin's name and, for external plugins, its distribution."""

    plugin: str
    distribution: str | None = None
    version: str | None = None

    def describe(self) -> str:
        if self.distribution:
            return f"plugin {self.plugin!r} ({self.distribution} {self.version or ''})".replace(" )", ")")
        return f"builtin plugin {self.plugin!r}"


@dataclass
class Registry(Generic[T]):
    """Entries of one kind, by name."""

    noun: str  # "scheduler", "serializer", ... used in error messages
    _items: dict[str, T] = field(default_factory=dict)
    _providers: dict[str, Provider] = field(default_factory=dict)

    def add(self, item: T, provider: Provider, name: str | None = None) -> str:
        """Register ``item`` under ``name`` (default: ``item.name``) and return the name.

        :raises PluginError: the name is malformed or already taken; the message names both providers.
        """
        name = name if name is not None else getattr(item, "name", None)
        if not isinstance(name, str) or not valid_name(name):
            raise PluginError(
                f"{provider.describe()} registered a {self.noun} with invalid name {name!r}: "
                "names are lower-case letters, digits, '_' and '-', starting with a letter"
            )
        if name in self._items:
            raise PluginError(
                f"{self.noun} {name!r} is registered twice: by {self._providers[name].describe()} "
                f"and by {provider.describe()}; uninstall one of them"
            )
        self._items[name] = item
        self._providers[name] = provider
        return name

    def get(self, name: str) -> T:
        """The entry called ``name``.

        :raises UnknownChoiceError: naming the valid names.
        """
        try:
            return self._items[name]
        except KeyError:
            raise UnknownChoiceError(self.noun, name, self._items) from None

    def provider(self, name: str) -> Provider:
        """Who registered ``name`` (for messages that name the owner of a taken name)."""
        return self._providers[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
