"""safemlrm: measure how safe multimodal reasoning models are, and how much safety they lost.

The public API mirrors the CLI: ``run`` (or its stages ``generate``, ``judge``, ``report``), ``plan``,
``demo``, ``load``, ``to_dataframe``.
"""

from __future__ import annotations

from typing import Any

from safemlrm._version import __version__

_API = ("run", "generate", "judge", "plan", "demo", "demo_config", "report", "load", "to_dataframe")
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    # Lazy, so `import safemlrm` stays cheap and plugin modules can import the package freely.
    if name in _API:
        from safemlrm.verbs import api

        return getattr(api, name)
    raise AttributeError(f"module 'safemlrm' has no attribute {name!r}")
