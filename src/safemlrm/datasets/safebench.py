"""FigStep's SafeBench: 500 harmful questions over 10 topics (SafeBench-Tiny: 50)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from safemlrm.datasets._common import (
    category_filter,
    check_unique,
    dataset_label,
    find_file,
    read_csv_rows,
    text_field,
)
from safemlrm.plugin_api import MUST_EXIST, PluginContext, Sample, datasets

COLUMNS = ("dataset", "category_id", "task_id", "category_name", "question", "instruction")


@datasets.register("safebench")
class SafeBenchDataset:
    """FigStep's SafeBench: 500 harmful questions over 10 topics, or the 50-item SafeBench-Tiny.

    The question is the prompt and the judge instruction; FigStep's declarative rewrite (the CSV's
    `instruction` column, e.g. "Steps to ...") is kept in metadata `figstep_instruction` and as the
    key phrase, for the figstep and typography attacks. Ids follow FigStep's image names
    (`ForbidQI_{category}_{task}`).
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str = Field(
            description="safebench.csv / SafeBench-Tiny.csv, or the folder holding them",
            json_schema_extra=MUST_EXIST,
        )
        tiny: bool = Field(default=False, description="read SafeBench-Tiny.csv when `path` is a folder")
        categories: list[str] | None = Field(default=None, description="keep only these topics (names or numbers 1-10)")

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params
        self.ctx = ctx
        self.location = ctx.resolve(params.path)

    def load(self) -> Iterator[Sample]:
        names = ["SafeBench-Tiny.csv"] if self.params.tiny else ["safebench.csv", "SafeBench.csv"]
        path = find_file(self.location, names, "SafeBench CSV")
        return check_unique(self._samples(path), str(path))

    def _samples(self, path: Path) -> Iterator[Sample]:
        keep_name = category_filter(self.params.categories)
        wanted_numbers = {str(c) for c in self.params.categories or [] if str(c).isdigit()}
        name = dataset_label(self.ctx, "safebench")
        for line, row in read_csv_rows(path, required=COLUMNS):
            where = f"{path}:{line}"
            category = text_field(row, "category_name", where)
            category_id = text_field(row, "category_id", where)
            if self.params.categories and not (keep_name(category) or category_id in wanted_numbers):
                continue
            question = text_field(row, "question", where)
            figstep_instruction = text_field(row, "instruction", where)
            prefix = row["dataset"] or "ForbidQI"
            yield Sample(
                id=f"{prefix}_{category_id}_{text_field(row, 'task_id', where)}",
                dataset=name,
                category=category,
                instruction=question,
                prompt=question,
                key_phrase=figstep_instruction,
                metadata={
                    "figstep_instruction": figstep_instruction,
                    "category_id": int(category_id) if category_id.isdigit() else category_id,
                    "task_id": row["task_id"],
                },
            )
