"""XSTest (Röttger et al., 2024): 250 safe and 200 unsafe prompts for over-refusal."""

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
    find_file,
    read_csv_rows,
    text_field,
)
from safemlrm.plugin_api import MUST_EXIST, PluginContext, Sample, datasets


@datasets.register("xstest")
class XSTestDataset:
    """XSTest: 250 safe prompts that look unsafe (benign=true) and 200 unsafe contrasts, for over-refusal.

    The category is XSTest's prompt type (homonyms, figurative_language, contrast_homonyms ...);
    `focus` and `note` are kept in metadata.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str = Field(description="xstest_prompts.csv (or its folder)", json_schema_extra=MUST_EXIST)
        labels: Literal["all", "safe", "unsafe"] = Field(default="all", description="which prompts to load")
        types: list[str] | None = Field(default=None, description="keep only these prompt types")

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params
        self.ctx = ctx
        self.location = ctx.resolve(params.path)

    def load(self) -> Iterator[Sample]:
        path = find_file(self.location, ["xstest_prompts.csv", "xstest_v2_prompts.csv"], "XSTest CSV")
        return check_unique(self._samples(path), str(path))

    def _samples(self, path: Path) -> Iterator[Sample]:
        keep_type = category_filter(self.params.types)
        name = dataset_label(self.ctx, "xstest")
        for line, row in read_csv_rows(path, required=("id", "prompt", "type", "label")):
            where = f"{path}:{line}"
            label = text_field(row, "label", where).strip().lower()
            if label not in ("safe", "unsafe"):
                raise DatasetError(f"{where}: field 'label' must be 'safe' or 'unsafe', got {label!r}")
            if self.params.labels != "all" and label != self.params.labels:
                continue
            prompt_type = text_field(row, "type", where)
            if not keep_type(prompt_type):
                continue
            prompt = text_field(row, "prompt", where)
            yield Sample(
                id=f"xstest-{text_field(row, 'id', where)}",
                dataset=name,
                category=prompt_type,
                instruction=prompt,
                prompt=prompt,
                benign=label == "safe",
                metadata={"label": label, "focus": row.get("focus", ""), "note": row.get("note", "")},
            )
