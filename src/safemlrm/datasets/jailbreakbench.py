"""JailbreakBench JBB-Behaviors (Chao et al., 2024): 100 harmful and 100 benign behaviours."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from safemlrm.datasets._common import (
    DatasetError,
    category_filter,
    check_unique,
    dataset_label,
    read_csv_rows,
    require_dir,
    text_field,
)
from safemlrm.plugin_api import MUST_EXIST, PluginContext, Sample, datasets

FILE_NAMES = {
    "harmful": ("jbb_harmful_behaviors.csv", "harmful-behaviors.csv", "harmful_behaviors.csv"),
    "benign": ("jbb_benign_behaviors.csv", "benign-behaviors.csv", "benign_behaviors.csv"),
}


@datasets.register("jailbreakbench")
class JailbreakBenchDataset:
    """JailbreakBench JBB-Behaviors: 100 harmful behaviours and 100 benign look-alikes (benign=true).

    `path` is a folder holding the harmful and benign CSVs (JailbreakBench's or this project's
    file names), or one CSV when `split` is harmful or benign. The goal is the prompt; the target
    string, behaviour and source are kept in metadata.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str = Field(description="folder with the behaviour CSVs, or one CSV", json_schema_extra=MUST_EXIST)
        split: Literal["harmful", "benign", "all"] = Field(default="harmful", description="which behaviours")
        categories: list[str] | None = Field(default=None, description="keep only these categories")

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params
        self.ctx = ctx
        self.location = ctx.resolve(params.path)

    def files(self) -> list[tuple[str, Path]]:
        splits = ["harmful", "benign"] if self.params.split == "all" else [self.params.split]
        if self.location.is_file():
            if len(splits) > 1:
                raise DatasetError(f"{self.location}: `split: all` needs a folder holding both CSVs")
            return [(splits[0], self.location)]
        require_dir(self.location, "JailbreakBench folder")
        found = []
        for split in splits:
            path = next((self.location / n for n in FILE_NAMES[split] if (self.location / n).is_file()), None)
            if path is None:
                raise DatasetError(
                    f"{self.location}: no {split} behaviours CSV (looked for {', '.join(FILE_NAMES[split])})"
                )
            found.append((split, path))
        return found

    def load(self) -> Iterator[Sample]:
        files = self.files()
        return check_unique(self._samples(files), str(self.location))

    def _samples(self, files: list[tuple[str, Path]]) -> Iterator[Sample]:
        keep = category_filter(self.params.categories)
        name = dataset_label(self.ctx, "jailbreakbench")
        for split, path in files:
            for index, (line, row) in enumerate(read_csv_rows(path, required=("Goal", "Category")), start=1):
                where = f"{path}:{line}"
                category = text_field(row, "Category", where)
                if not keep(category):
                    continue
                goal = text_field(row, "Goal", where)
                number = (row.get("Index") or "").strip() or str(index)
                yield Sample(
                    id=f"jbb-{split}-{number}",
                    dataset=name,
                    category=category,
                    instruction=goal,
                    prompt=goal,
                    benign=split == "benign",
                    metadata={
                        "behavior": row.get("Behavior", ""),
                        "target": row.get("Target", ""),
                        "source": row.get("Source", ""),
                    },
                )
