"""A judgement cache shared across runs: the same judge, instruction and text are judged once.

It lives beside the user's other caches (``$SAFEMLRM_CACHE_DIR`` or ``~/.cache/safemlrm``) and holds
only final judgements (no transport failure). Its keys cover everything that changes a verdict, the
judge's code included (``pipeline.build``); ``judge_cache: null`` in a config turns it off. The run
store keeps its own copy of every judgement it uses, so a run directory stays complete on its own.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from safemlrm.core.store import connect
from safemlrm.core.types import Judgement


def cache_root() -> Path:
    """Where safemlrm keeps what it shares across runs: ``$SAFEMLRM_CACHE_DIR`` or ``~/.cache/safemlrm``."""
    return Path(os.environ.get("SAFEMLRM_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "safemlrm"))


def default_cache_path() -> Path:
    return cache_root() / "judgements.sqlite"


class JudgementCache:
    def __init__(self, path: str | Path) -> None:
        self.path = default_cache_path() if str(path) == "default" else Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = connect(self.path)
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS judgements (key TEXT PRIMARY KEY, data TEXT NOT NULL, created REAL NOT NULL)"
        )
        self._pending = 0

    def get(self, key: str) -> Judgement | None:
        row = self.conn.execute("SELECT data FROM judgements WHERE key=?", (key,)).fetchone()
        return Judgement.model_validate_json(row[0]) if row else None

    def put(self, key: str, judgement: Judgement) -> None:
        if judgement.error is not None:
            return
        if self._pending == 0:
            self.conn.execute("BEGIN")
        self.conn.execute(
            "INSERT OR IGNORE INTO judgements VALUES (?, ?, ?)", (key, judgement.model_dump_json(), time.time())
        )
        self._pending += 1
        if self._pending >= 256:
            self.commit()

    def commit(self) -> None:
        if self._pending:
            self.conn.execute("COMMIT")
            self._pending = 0

    def close(self) -> None:
        self.commit()
        self.conn.close()
