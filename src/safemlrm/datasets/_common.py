"""Shared helpers of the dataset loaders: file reading with row numbers, images, clear errors.

Every error names the file and, where there is one, the line or row and the field, so a user can
fix a broken dataset without a debugger.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from safemlrm.core.rowfiles import iter_jsonl
from safemlrm.plugin_api import ImageRef, PluginContext, Sample, file_sha256

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")


class DatasetError(ValueError):
    """A dataset file is missing, unreadable or malformed; the message names the file and row."""


def dataset_label(ctx: PluginContext, default: str) -> str:
    return ctx.label or default


def require_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{path}: {what} not found")
    if not path.is_file():
        raise DatasetError(f"{path}: {what} is not a file")
    return path


def require_dir(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{path}: {what} not found")
    if not path.is_dir():
        raise DatasetError(f"{path}: {what} is not a folder")
    return path


def find_file(folder_or_file: Path, names: Iterable[str], what: str) -> Path:
    """`folder_or_file` itself when it is a file, else the first of `names` inside it."""
    if folder_or_file.is_file():
        return folder_or_file
    require_dir(folder_or_file, what)
    candidates = list(names)
    for name in candidates:
        if (folder_or_file / name).is_file():
            return folder_or_file / name
    raise DatasetError(f"{folder_or_file}: no {what} in this folder (looked for {', '.join(candidates)})")


def read_csv_rows(path: Path, *, required: Iterable[str] = ()) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) from a CSV file with a header; checks required columns first."""
    require_file(path, "CSV file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise DatasetError(
                    f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; "
                    f"the file has: {', '.join(repr(c) for c in header) or 'no header'}"
                )
            start = 2  # the header is line 1
            for row in reader:
                if None in row:  # more cells than header columns
                    extra = len(row[None])
                    raise DatasetError(
                        f"{path}:{start}: row has {len(header) + extra} cells, the header has {len(header)}"
                    )
                yield start, {k: (v if v is not None else "") for k, v in row.items()}
                start = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise DatasetError(f"{path}: malformed CSV: {exc}") from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def csv_header(path: Path) -> list[str]:
    require_file(path, "CSV file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except (OSError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read the header: {exc}") from exc


def read_jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) from a JSON Lines file; blank lines are skipped."""
    require_file(path, "JSONL file")
    yield from iter_jsonl(path, error=DatasetError, loads=json.loads, where=lambda p, number: f"{p}:{number}")


def read_json(path: Path) -> Any:
    require_file(path, "JSON file")
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def parse_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in {"true", "1", "yes", "y", "t"}:
        return True
    if text in {"false", "0", "no", "n", "f", ""}:
        return False
    raise DatasetError(f"{where}: expected a boolean (true/false, 1/0, yes/no), got {value!r}")


def image_ref(
    value: str | os.PathLike[str],
    *,
    root: Path,
    where: str,
    verify: bool = True,
    allow_outside_root: bool = False,
) -> ImageRef:
    """Resolve an image path against `root`, check it stays inside it, opens as an image, and hash it."""
    raw = Path(value).expanduser()
    path = raw if raw.is_absolute() else root / raw
    resolved = path.resolve()
    if not allow_outside_root and not resolved.is_relative_to(root.resolve()):
        raise DatasetError(
            f"{where}: image path {str(value)!r} points outside the dataset root {root} "
            "(set allow_outside_root: true to permit it)"
        )
    if not resolved.exists():
        raise DatasetError(f"{where}: image not found: {path}")
    if not resolved.is_file():
        raise DatasetError(f"{where}: image path is not a file: {path}")
    if verify:
        verify_image(resolved, where)
    try:
        digest = file_sha256(str(resolved))
    except OSError as exc:
        raise DatasetError(f"{where}: cannot read image {path}: {exc.strerror or exc}") from exc
    return ImageRef(path=str(resolved), sha256=digest)


def verify_image(path: Path, where: str) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.verify()
    except UnidentifiedImageError as exc:
        raise DatasetError(f"{where}: not a readable image: {path}") from exc
    except Exception as exc:  # Pillow raises assorted errors for truncated or corrupt files
        raise DatasetError(f"{where}: corrupt or unreadable image {path}: {exc}") from exc


def find_image(folder: Path, stem: str) -> Path | None:
    """The first existing `folder/stem.<suffix>` for the common image suffixes (or `stem` as is)."""
    direct = folder / stem
    if direct.suffix.lower() in IMAGE_SUFFIXES and direct.is_file():
        return direct
    for suffix in IMAGE_SUFFIXES:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def normalise_name(text: str) -> str:
    """Lower case, with spaces, dashes and underscores removed: for forgiving name matching."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def category_filter(wanted: Iterable[str] | None) -> Callable[[str], bool]:
    """A predicate keeping categories named in `wanted` (case and punctuation insensitive)."""
    if not wanted:
        return lambda _category: True
    keys = {normalise_name(w) for w in wanted}
    return lambda category: normalise_name(category) in keys


def check_unique(samples: Iterable[Sample], source: str) -> Iterator[Sample]:
    """Pass samples through, failing on a repeated id (ids key the run store)."""
    seen: dict[str, int] = {}
    for index, sample in enumerate(samples, start=1):
        if sample.id in seen:
            raise DatasetError(f"{source}: duplicate sample id {sample.id!r} (items {seen[sample.id]} and {index})")
        seen[sample.id] = index
        yield sample


def text_field(row: Mapping[str, Any], column: str, where: str, *, required: bool = True) -> str:
    value = row.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise DatasetError(f"{where}: field {column!r} is empty")
        return ""
    if not isinstance(value, (str, int, float)):
        raise DatasetError(f"{where}: field {column!r} must be text, got {type(value).__name__}")
    return str(value)
