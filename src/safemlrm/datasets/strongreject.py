"""StrongREJECT (Souly et al., 2024): 313 forbidden prompts in 6 categories."""

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


@datasets.register("strongreject")
class StrongRejectDataset:
    """StrongREJECT: 313 forbidden prompts in 6 categories (the category and source are kept).

    Ids are `strongreject-{row}` with the 1-based data row, stable for a given file.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str = Field(description="strongreject_dataset.csv (or its folder)", json_schema_extra=MUST_EXIST)
        categories: list[str] | None = Field(default=None, description="keep only these categories")

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params
        self.ctx = ctx
        self.location = ctx.resolve(params.path)

    def load(self) -> Iterator[Sample]:
        path = find_file(self.location, ["strongreject_dataset.csv", "strongreject_small_dataset.csv"], "CSV")
        return check_unique(self._samples(path), str(path))

    def _samples(self, path: Path) -> Iterator[Sample]:
        keep = category_filter(self.params.categories)
        name = dataset_label(self.ctx, "strongreject")
        for index, (line, row) in enumerate(read_csv_rows(path, required=("category", "forbidden_prompt")), 1):
            where = f"{path}:{line}"
            category = text_field(row, "category", where)
            if not keep(category):
                continue
            prompt = text_field(row, "forbidden_prompt", where)
            yield Sample(
                id=f"strongreject-{index}",
                dataset=name,
                category=category,
                instruction=prompt,
                prompt=prompt,
                metadata={"source": row.get("source", "")},
            )
