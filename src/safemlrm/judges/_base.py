"""What the judge base classes share: their name and version, how they build a Judgement, and the
version of the code their verdicts come from."""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
from pathlib import Path
from typing import ClassVar

from safemlrm.core.trust import JudgeValidation, not_validated
from safemlrm.plugin_api import Judgement


def verdict_code_version(cls: type) -> str:
    """A hash of the source of the code a judge's verdicts come from (its parsing included).

    It covers the module of the judge class and of each of its base classes that belong to safemlrm
    or to the judge's own package, and the modules the class names in ``verdict_modules``. It is part
    of the judgement cache key, so a fix to a judge's parsing is never answered with verdicts cached
    by the old code; no version number has to be bumped by hand.
    """
    top = cls.__module__.split(".")[0]
    names = [
        klass.__module__
        for klass in cls.__mro__
        if klass.__module__.split(".")[0] in ("safemlrm", top) and klass.__module__ != "builtins"
    ]
    names += list(getattr(cls, "verdict_modules", ()))
    return _sources_hash(tuple(sorted(set(names))))


@functools.cache
def _sources_hash(module_names: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for name in module_names:
        module = importlib.import_module(name)
        path = getattr(module, "__file__", None)
        if path and Path(path).is_file():
            data = Path(path).read_bytes()
        else:  # no file (built in memory): its source as inspect finds it, else its name only
            try:
                data = inspect.getsource(module).encode("utf-8")
            except (OSError, TypeError):
                data = b""
        digest.update(name.encode("utf-8") + b"\0" + data + b"\0")
    return digest.hexdigest()[:16]


class JudgeBase:
    kind: ClassVar[str] = "judge"
    version: ClassVar[str] = "1"
    label: str

    def validation(self) -> JudgeValidation:
        """How far this judge's numbers can be trusted: its agreement with human labels, as configured.

        Shown beside its rates in summary.json and the reports. Override it (the bundled judges read
        their figures from data files, `judges/_trust.py`); the default says "not validated here".
        """
        return not_validated("no agreement with human labels is recorded for this judge")

    def _judgement(
        self, score: float, label: str, *, rationale: str = "", raw: str = "", error: str | None = None
    ) -> Judgement:
        return Judgement(
            judge=self.label,
            judge_version=self.version,
            score=score,
            label=label,
            rationale=rationale,
            raw=raw,
            error=error,
        )
