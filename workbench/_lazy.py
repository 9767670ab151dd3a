"""Lazy re-exports for package faces (PEP 562), so importing a package loads no heavy module.

A package ``__init__`` lists ``name -> submodule`` and calls :func:`attach`; a name is imported
from its submodule the first time it is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def attach(package: str, exports: dict[str, str]) -> tuple[Callable, Callable, list[str]]:
    """``__getattr__``, ``__dir__`` and a sorted ``__all__`` for ``package``.

    Args:
        package: the package's ``__name__``.
        exports: public name -> submodule (relative to the package) that defines it.
    """

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value
        return value

    def __dir__():
        return sorted(set(importlib.import_module(package).__dict__) | set(exports))

    return __getattr__, __dir__, sorted(exports)
