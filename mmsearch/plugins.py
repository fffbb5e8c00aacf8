"""Plug-in packages: a package whose every module is one implementation of the same thing (an index kind, a REST
resource, a dataset, an encoder), found by listing the package rather than by a list kept elsewhere, so adding one is
adding a module.

A module whose name starts with ``_`` (a shared base) is not a plug-in.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType


@cache
def discover(package: str) -> tuple[ModuleType, ...]:
    """The plug-in modules of ``package`` (a dotted name), imported, in name order."""
    found = importlib.import_module(package)
    names = sorted(m.name for m in pkgutil.iter_modules(found.__path__) if not m.name.startswith("_"))
    return tuple(importlib.import_module(f"{package}.{name}") for name in names)
