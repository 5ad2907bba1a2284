"""Replay outputs a user already has (JSONL, JSON array, CSV or Parquet), matched by sample id (and attack).

Evaluating existing generations is a common need: the model ran elsewhere, and only its outputs are
at hand. The file is read once at construction so a bad file stops the run before any work, with an
error naming the file and row. A probe with no row gets a Generation with an error, not an exception.
`where` keeps only matching rows, so one file of many models' outputs feeds one target per model; a
file without an id column is matched by position (row k of the kept rows is sample id `k`, from 0,
the id the jsonl and csv datasets give a row without one).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from safemlrm.core.context import PluginContext
from safemlrm.core.hashing import file_sha256
from safemlrm.core.plugins import targets
from safemlrm.core.registry import MUST_EXIST
from safemlrm.core.rowfiles import iter_jsonl, iter_parquet
from safemlrm.core.types import Generation, Probe


class ReplayFileError(ValueError):
    """A replay file that cannot be used, with the file and row."""


Scalar = str | int | float | bool


def _as_text(value: Any) -> str:
    """A cell or a `where` value as text, so a CSV cell "7" matches `where: {run: 7}`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class _Replayed(BaseModel):
    model_config = ConfigDict(frozen=True)
    text: str
    reasoning: str | None = None
    error: str | None = None
    finish_reason: str | None = None


def _detect_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffixes and suffixes[-1] in (".csv", ".tsv"):
        return "csv"
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        return "parquet"
    raise ReplayFileError(f"{path}: unknown extension; set `format` to jsonl, csv or parquet")


def _iter_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            if reader.fieldnames is None:
                return
            for row in reader:
                if None in row:  # more cells than header columns
                    raise ReplayFileError(
                        f"{path}: line {reader.line_num}: more cells than the "
                        f"{len(reader.fieldnames)} header columns"
                    )
                yield reader.line_num, dict(row)
    except UnicodeDecodeError as exc:
        raise ReplayFileError(f"{path}: not UTF-8 text: {exc}") from None
    except csv.Error as exc:
        raise ReplayFileError(f"{path}: malformed CSV: {exc}") from None


@targets.register("replay")
class ReplayTarget:
    """Outputs a user already has, from a JSONL/CSV/Parquet file, matched by sample id (and attack)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str = Field(
            description="file of outputs (relative paths resolve against the config's folder)",
            json_schema_extra=MUST_EXIST,
        )
        format: Literal["auto", "jsonl", "csv", "parquet", "export"] = Field(
            default="auto",
            description="file format; auto = from the extension; export = a `safemlrm export` file (jsonl, "
            "parquet, hf) or dataset folder, matched by probe key",
        )
        source_target: str | None = Field(
            default=None, description="with format: export, the target of the exported run to replay"
        )
        model: str = Field(default="replay", description="name of the model that produced the outputs")
        id_column: str = Field(default="id", description="column holding the sample id")
        output_column: str = Field(default="output", description="column holding the model's output text")
        reasoning_column: str | None = Field(
            default=None, description="column holding a native reasoning field, when the outputs have one"
        )
        attack_column: str | None = Field(
            default=None, description="column of attack names; when set, rows match (sample id, attack)"
        )
        error_column: str | None = Field(
            default=None, description="column holding an error text; non-empty marks a failed generation"
        )
        finish_reason_column: str | None = Field(default=None, description="column holding the finish reason")
        where: dict[str, Scalar | list[Scalar]] = Field(
            default_factory=dict,
            description="keep only rows whose column equals the value (or one of a list of values), e.g. "
            "{model: r1-7b}; values compare as text",
        )

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params
        self.label = ctx.label or "replay"
        self.max_batch_size = 256
        self.max_concurrency = 1
        self.path = ctx.resolve(params.path)
        self._by_probe: dict[str, dict[str, str | None]] | None = None
        if params.format == "export":
            from safemlrm.interop.replay_source import export_sha256, load_export_outputs

            self._by_probe = load_export_outputs(self.path, params.source_target)
            self._sha256 = export_sha256(self.path)
            self._outputs: dict[tuple[str, str | None], _Replayed] = {}
            return
        if not self.path.is_file():
            raise ReplayFileError(f"{self.path}: replay file not found")
        self._sha256 = file_sha256(str(self.path))
        self._outputs = self._load()

    def identity(self) -> dict[str, Any]:
        # The file's content, not its location, determines the outputs.
        return {
            "kind": "replay",
            "file_sha256": self._sha256,
            **self.params.model_dump(exclude={"path", "format"}),
        }

    def _rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        fmt = self.params.format if self.params.format != "auto" else _detect_format(self.path)
        if fmt == "jsonl":
            return iter_jsonl(self.path, error=ReplayFileError)
        if fmt == "csv":
            return _iter_csv(self.path)
        return iter_parquet(self.path, error=ReplayFileError)

    def _cell(self, row: dict[str, Any], column: str, where: str, *, required: bool) -> str | None:
        if column not in row:
            if required:
                raise ReplayFileError(f"{where}: no column {column!r} (columns: {', '.join(map(str, row))})")
            return None
        value = row[column]
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ReplayFileError(f"{where}: column {column!r} must be text, got {type(value).__name__}")
        return str(value)

    def _optional(self, row: dict[str, Any], column: str | None, where: str) -> str | None:
        """A configured optional column: it must exist when named; None when not configured."""
        return self._cell(row, column, where, required=True) if column else None

    def _wanted(self) -> dict[str, set[str]]:
        return {
            column: {_as_text(v) for v in (value if isinstance(value, list) else [value])}
            for column, value in self.params.where.items()
        }

    def _check_where(self, columns: set[str], found: dict[str, set[str]], kept: int) -> None:
        """A `where` column in no row is a typo; a filter that keeps nothing names the values there are."""
        for column in self.params.where:
            if column not in columns:
                raise ReplayFileError(
                    f"{self.path}: column {column!r} (where) not found; the columns are: "
                    f"{', '.join(repr(c) for c in sorted(columns)) or 'none'}"
                )
        if not kept:
            seen = "; ".join(
                f"{column}: {', '.join(repr(v) for v in sorted(values)[:10])}"
                + (f" and {len(values) - 10} more" if len(values) > 10 else "")
                for column, values in found.items()
            )
            raise ReplayFileError(f"{self.path}: no row matches where {self.params.where} (values in the file: {seen})")

    def _load(self) -> dict[tuple[str, str | None], _Replayed]:
        p = self.params
        unit = "row" if (p.format == "parquet" or self.path.suffix.lower() in (".parquet", ".pq")) else "line"
        outputs: dict[tuple[str, str | None], _Replayed] = {}
        first_seen: dict[tuple[str, str | None], int] = {}
        wanted = self._wanted()
        columns: set[str] = set()
        found: dict[str, set[str]] = {column: set() for column in wanted}
        by_position: bool | None = None  # ids from row positions: decided on the first row kept
        kept = 0
        for number, row in self._rows():
            where = f"{self.path}: {unit} {number}"
            if wanted:
                columns.update(row)
                cells = {column: _as_text(row.get(column)) for column in wanted}
                for column, cell in cells.items():
                    if column in row:
                        found[column].add(cell)
                if not all(column in row and cells[column] in values for column, values in wanted.items()):
                    continue
            if by_position is None:
                by_position = p.id_column not in row and "id_column" not in p.model_fields_set
                if by_position and p.attack_column:
                    raise ReplayFileError(
                        f"{where}: no column {p.id_column!r}: with attack_column every row needs a sample id "
                        "(set id_column)"
                    )
            if by_position:
                sample_id = str(kept)
            else:
                id_cell = self._cell(row, p.id_column, where, required=True)
                if id_cell is None or not id_cell.strip():
                    raise ReplayFileError(f"{where}: empty sample id in column {p.id_column!r}")
                sample_id = id_cell
            kept += 1
            attack = self._optional(row, p.attack_column, where)
            error = self._optional(row, p.error_column, where)
            text = self._cell(row, p.output_column, where, required=not error)
            if text is None and not error:
                raise ReplayFileError(f"{where}: empty output in column {p.output_column!r}")
            reasoning = self._optional(row, p.reasoning_column, where)
            finish = self._optional(row, p.finish_reason_column, where)
            key = (sample_id, attack)
            if key in outputs:
                what = f"sample {sample_id!r}" + (f" with attack {attack!r}" if attack is not None else "")
                raise ReplayFileError(f"{where}: duplicate {what} (first at {unit} {first_seen[key]})")
            first_seen[key] = number
            outputs[key] = _Replayed(
                text=text or "",
                reasoning=reasoning or None,
                error=error or None,
                finish_reason=finish or None,
            )
        if wanted:
            self._check_where(columns, found, kept)
        if not outputs:
            raise ReplayFileError(f"{self.path}: no rows")
        return outputs

    def __len__(self) -> int:
        return len(self._by_probe) if self._by_probe is not None else len(self._outputs)

    def _generation(self, probe: Probe) -> Generation:
        if self._by_probe is not None:
            row = self._by_probe.get(probe.key)
            if row is None:
                return Generation(probe_key=probe.key, target=self.label, error="no exported output for this probe")
            return Generation(
                probe_key=probe.key,
                target=self.label,
                text=row["text"] or "",
                reasoning=row["reasoning"],
                error=row["error"],
                finish_reason=row["finish_reason"],
            )
        attack = probe.attack if self.params.attack_column else None
        found = self._outputs.get((probe.sample_id, attack))
        if found is None:
            suffix = f" (attack {probe.attack})" if attack is not None else ""
            return Generation(
                probe_key=probe.key,
                target=self.label,
                error=f"no replayed output for sample {probe.sample_id}{suffix}",
            )
        return Generation(
            probe_key=probe.key,
            target=self.label,
            text=found.text,
            reasoning=found.reasoning,
            finish_reason=found.finish_reason,
            error=found.error,
        )

    async def generate(self, probes: Sequence[Probe]) -> list[Generation]:
        return [self._generation(p) for p in probes]

    async def aclose(self) -> None:
        return None
