"""The Python environment of a launch, for ``metadata/requirements.txt``: every installed distribution and
its version (``importlib.metadata``, no pip subprocess), editable installs marked with where they point."""

from __future__ import annotations

import json
import platform
import re
import sys
from importlib import metadata


def python_version() -> str:
    return platform.python_version()


def requirements_text() -> str:
    """``name==version`` lines, sorted, one per distribution (the first found on ``sys.path`` wins, as in
    an import), after a comment naming the interpreter."""
    lines: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key not in lines:
            lines[key] = f"{name}=={dist.version}" + _editable_note(dist)
    header = f"# python {python_version()} ({sys.executable})\n"
    return header + "".join(line + "\n" for _, line in sorted(lines.items()))


def _editable_note(dist: metadata.Distribution) -> str:
    """``  # editable file:///...`` for an editable install (PEP 610 ``direct_url.json``)."""
    try:
        data = json.loads(dist.read_text("direct_url.json") or "{}")
    except (ValueError, OSError):
        return ""
    if isinstance(data, dict) and data.get("dir_info", {}).get("editable"):
        return f"  # editable {data.get('url', '')}"
    return ""
