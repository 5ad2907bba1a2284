"""`safemlrm export`: one row per (probe, target) with every part and every judgement."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from safemlrm.core.records import Record
from safemlrm.core.store import RunStore

FORMATS = ("jsonl", "parquet", "inspect", "hf")


def record_row(record: Record) -> dict[str, Any]:
    sample, probe, gen, parsed = record.sample, record.probe, record.generation, record.parsed
    row: dict[str, Any] = {
        "sample_id": sample.id,
        "dataset": sample.dataset,
        "category": sample.category,
        "benign": sample.benign,
        "instruction": sample.instruction,
        "attack": probe.attack,
        "attack_params": orjson.dumps(probe.attack_params).decode(),
        "prompt": probe.user_text,
        "images": [img.path for img in probe.images],
        "probe_key": probe.key,
        "target": gen.target,
        "sample_index": record.sample_index,  # which of the target's k samples of the probe
        "output": gen.text,
        "native_reasoning": gen.reasoning,
        "reasoning": parsed.reasoning,
        "answer": parsed.answer,
        "parse_status": parsed.status.value,
        "finish_reason": gen.finish_reason,
        "latency_s": gen.latency_s,
        "prompt_tokens": gen.usage.get("prompt_tokens"),
        "completion_tokens": gen.usage.get("completion_tokens"),
        "error": gen.error,
    }
    for (part, judge), j in sorted(record.judgements.items()):
        row[f"score.{part.value}.{judge}"] = j.score
        row[f"label.{part.value}.{judge}"] = j.label
        row[f"rationale.{part.value}.{judge}"] = j.rationale
    return row


def iter_rows(run_dir: Path) -> Iterator[dict[str, Any]]:
    store = RunStore(run_dir, create=False)
    try:
        for record in store.iter_records():
            yield record_row(record)
    finally:
        store.close()


def export_run(run_dir: Path, fmt: str, out: Path | None = None) -> Path:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "inspect":  # one inspect_ai .eval log per target, in a folder
        from safemlrm.interop.inspect_log import export_inspect

        return export_inspect(run_dir, out)
    if fmt == "hf":  # fixed schema (docs/interop.md): a .parquet file, else a datasets folder
        from safemlrm.interop.hf_dataset import export_hf

        return export_hf(run_dir, out or run_dir / "export.hf.parquet")
    out = out or run_dir / f"export.{fmt}"
    if fmt == "jsonl":
        with out.open("wb") as handle:
            for row in iter_rows(run_dir):
                handle.write(orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY))
                handle.write(b"\n")
        return out
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError("Parquet export needs pyarrow: pip install 'safemlrm[parquet]'") from exc
    rows = list(iter_rows(run_dir))
    columns = sorted({k for row in rows for k in row}, key=lambda k: (k.count("."), k))
    table = pa.table({c: [row.get(c) for row in rows] for c in columns})
    pq.write_table(table, out)
    return out
