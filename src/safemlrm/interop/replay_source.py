"""Read a safemlrm export (JSONL, Parquet or a Hugging Face dataset folder) back as model outputs.

Used by the `replay` target with `format: export`: outputs are matched to probes by `probe_key`,
which is exact even when an attack makes several probes of one sample. An export holds every target
of a run, so `source_target` picks one (it may be left out when the export has a single target).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from safemlrm.core.rowfiles import iter_jsonl, iter_parquet, line_where

REQUIRED = ("probe_key", "target", "output")


class ExportFileError(ValueError):
    """An export that cannot be replayed, naming the file and row."""


def iter_export_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) for each row of an export file or dataset folder."""
    if path.is_dir():
        from safemlrm.interop.hf_dataset import _import_datasets

        dataset = _import_datasets().load_from_disk(str(path))
        for number, row in enumerate(dataset, start=1):
            yield f"{path}: row {number}", dict(row)
        return
    if path.suffix.lower() in (".parquet", ".pq"):
        for number, row in iter_parquet(path, error=ExportFileError):
            yield f"{path}: row {number}", row
        return
    for number, row in iter_jsonl(path, error=ExportFileError):
        yield line_where(path, number), row


def _text(row: dict[str, Any], column: str, where: str) -> str | None:
    value = row.get(column)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ExportFileError(f"{where}: column {column!r} must be text, got {type(value).__name__}")
    return value


def load_export_outputs(path: Path, source_target: str | None) -> dict[str, dict[str, str | None]]:
    """probe key -> {text, reasoning, error, finish_reason} of one target of an export."""
    if not path.exists():
        raise ExportFileError(f"{path}: export not found")
    by_target: dict[str, dict[str, dict[str, str | None]]] = {}
    for where, row in iter_export_rows(path):
        missing = [c for c in REQUIRED if c not in row]
        if missing:
            raise ExportFileError(
                f"{where}: not a safemlrm export: no column {', '.join(map(repr, missing))} "
                f"(columns: {', '.join(map(str, row))})"
            )
        target = _text(row, "target", where) or ""
        if source_target is not None and target != source_target:
            by_target.setdefault(target, {})
            continue
        key = _text(row, "probe_key", where)
        if not key:
            raise ExportFileError(f"{where}: empty probe_key")
        outputs = by_target.setdefault(target, {})
        if key in outputs:
            raise ExportFileError(f"{where}: probe {key} appears twice for target {target!r}")
        outputs[key] = {
            "text": _text(row, "output", where) or "",
            "reasoning": _text(row, "native_reasoning", where) or None,
            "error": _text(row, "error", where) or None,
            "finish_reason": _text(row, "finish_reason", where) or None,
        }
    known = ", ".join(sorted(by_target)) or "none"
    if source_target is None:
        if len(by_target) > 1:
            raise ExportFileError(f"{path}: the export holds several targets ({known}); set `source_target`")
        chosen = next(iter(by_target.values()), {})
    else:
        chosen = by_target.get(source_target, {})
    if not chosen:
        raise ExportFileError(f"{path}: no rows for target {source_target!r} (targets in the file: {known})")
    return chosen


def export_sha256(path: Path) -> str:
    """Content hash of an export file, or of every file of a dataset folder."""
    from safemlrm.core.hashing import content_hash, file_sha256

    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return content_hash([[str(p.relative_to(path)), file_sha256(str(p))] for p in files])
    return file_sha256(str(path))
