"""Small builders shared by the core tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safemlrm.config import RunConfig


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
