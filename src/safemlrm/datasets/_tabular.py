"""Column mapping shared by the generic JSONL, CSV and Hugging Face loaders (and the demo set)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from safemlrm.datasets._common import DatasetError, category_filter, image_ref, parse_bool, text_field
from safemlrm.plugin_api import MUST_EXIST, ImageRef, Sample

FIELDS = ("id", "category", "instruction", "prompt", "image", "key_phrase", "benign")
REQUIRED_WHEN_NAMED = frozenset({"id", "instruction", "prompt"})


class ColumnMap(BaseModel):
    """Which column of the file fills which Sample field.

    A column named explicitly in the config must exist; a default name that is absent is simply
    skipped. `instruction` and `prompt` fall back on each other; a missing `id` becomes the row number.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default="id", description="column with a unique sample id (else the row number)")
    category: str = Field(default="category", description="column with the category / scenario")
    instruction: str = Field(default="instruction", description="column with the intent the judge scores against")
    prompt: str = Field(default="prompt", description="column with the text sent to the model")
    image: str = Field(default="image", description="column with an image path (or a list of paths)")
    key_phrase: str = Field(default="key_phrase", description="column with the key phrase for image attacks")
    benign: str = Field(default="benign", description="column marking prompts a model should answer")

    def explicit(self) -> set[str]:
        return set(self.model_fields_set)

    def check_columns(self, available: Iterable[str], source: str, fields: Iterable[str] | None = None) -> None:
        """Fail when a column named explicitly in the config (of `fields`, default all) is not in the file."""
        columns = list(available)
        for field in sorted(self.explicit() if fields is None else self.explicit() & set(fields)):
            name = getattr(self, field)
            if name not in columns:
                raise DatasetError(
                    f"{source}: column {name!r} (columns.{field}) not found; "
                    f"the columns are: {', '.join(repr(c) for c in columns) or 'none'}"
                )


class TabularParams(BaseModel):
    """Params of the generic JSONL / CSV loaders."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        description="the data file (relative paths resolve against the config's folder)",
        json_schema_extra=MUST_EXIST,
    )
    columns: ColumnMap = Field(default_factory=ColumnMap, description="file column for each Sample field")
    image_root: str | None = Field(
        default=None, description="folder image paths are relative to (default: the data file's folder)",
        json_schema_extra=MUST_EXIST,
    )
    allow_outside_root: bool = Field(
        default=False, description="allow image paths that leave the image root (../, absolute paths)"
    )
    verify_images: bool = Field(default=True, description="open each image once to catch corrupt files")
    image_separator: str | None = Field(
        default=None, description="split an image cell on this string into several images (CSV)"
    )
    default_category: str = Field(default="", description="category for rows without one")
    keep_metadata: bool = Field(default=True, description="keep unmapped columns in Sample.metadata")
    categories: list[str] | None = Field(default=None, description="keep only these categories")


ImageResolver = Callable[[Any, str], tuple[ImageRef, ...]]


def path_image_resolver(root: Path, *, verify: bool, allow_outside_root: bool, separator: str | None) -> ImageResolver:
    """Resolve an image cell (a path, a list of paths, or empty) into image references."""

    def resolve(value: Any, where: str) -> tuple[ImageRef, ...]:
        if value is None or value == "":
            return ()
        if isinstance(value, str):
            items: list[Any] = value.split(separator) if separator else [value]
        elif isinstance(value, list):
            items = value
        else:
            raise DatasetError(f"{where}: image must be a path or a list of paths, got {type(value).__name__}")
        refs = []
        for item in items:
            if not isinstance(item, str):
                raise DatasetError(f"{where}: image path must be text, got {type(item).__name__}")
            if item.strip():
                refs.append(
                    image_ref(
                        item.strip(),
                        root=root,
                        where=where,
                        verify=verify,
                        allow_outside_root=allow_outside_root,
                    )
                )
        return tuple(refs)

    return resolve


def row_to_sample(
    row: Mapping[str, Any],
    *,
    where: str,
    index: int,
    columns: ColumnMap,
    dataset: str,
    images: ImageResolver,
    default_category: str = "",
    keep_metadata: bool = True,
) -> Sample:
    """Map one row to a Sample. `where` ("file:line") prefixes every error."""
    # Named id / instruction / prompt columns must be in every row; optional ones may be absent from
    # a row (JSONL rows differ), the loaders check that they appear in the file at all.
    for field in sorted(columns.explicit() & REQUIRED_WHEN_NAMED):
        name = getattr(columns, field)
        if name not in row:
            raise DatasetError(
                f"{where}: no column {name!r} (columns.{field}); "
                f"this row has: {', '.join(repr(k) for k in row) or 'nothing'}"
            )
    has_instruction = columns.instruction in row and row[columns.instruction] not in (None, "")
    has_prompt = columns.prompt in row and row[columns.prompt] not in (None, "")
    if not has_instruction and not has_prompt:
        raise DatasetError(
            f"{where}: neither {columns.instruction!r} nor {columns.prompt!r} has text; "
            f"this row has: {', '.join(repr(k) for k in row) or 'nothing'} "
            "(map your columns with `columns: {instruction: ..., prompt: ...}`)"
        )
    instruction = text_field(row, columns.instruction, where) if has_instruction else ""
    prompt = text_field(row, columns.prompt, where) if has_prompt else ""
    sample_id = text_field(row, columns.id, where) if columns.id in row else str(index)
    category = text_field(row, columns.category, where, required=False) or default_category
    key_phrase = text_field(row, columns.key_phrase, where, required=False)
    benign = parse_bool(row.get(columns.benign), f"{where}: field {columns.benign!r}")
    refs = images(row.get(columns.image), where) if columns.image in row else ()
    metadata: dict[str, Any] = {}
    if keep_metadata:
        mapped = {getattr(columns, f) for f in FIELDS}
        for key, value in row.items():
            if key in mapped:
                continue
            if key == "metadata" and isinstance(value, dict):
                metadata.update(value)
            else:
                metadata[key] = value
    return Sample(
        id=sample_id,
        dataset=dataset,
        category=category,
        instruction=instruction or prompt,
        prompt=prompt or instruction,
        images=refs,
        key_phrase=key_phrase,
        benign=benign,
        metadata=metadata,
    )


def tabular_samples(
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    params: TabularParams,
    *,
    path: Path,
    image_root: Path,
    dataset: str,
) -> Iterator[Sample]:
    """The samples of a data file's (line number, row) pairs, kept when their category is wanted."""
    images = path_image_resolver(
        image_root,
        verify=params.verify_images,
        allow_outside_root=params.allow_outside_root,
        separator=params.image_separator,
    )
    keep = category_filter(params.categories)
    for index, (line, row) in enumerate(rows):
        sample = row_to_sample(
            row,
            where=f"{path}:{line}",
            index=index,
            columns=params.columns,
            dataset=dataset,
            images=images,
            default_category=params.default_category,
            keep_metadata=params.keep_metadata,
        )
        if keep(sample.category):
            yield sample
