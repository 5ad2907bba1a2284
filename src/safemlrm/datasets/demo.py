"""The bundled demo benchmark (26 harmful requests over 13 scenarios, 8 benign look-alikes)."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from safemlrm.datasets._common import category_filter, check_unique, dataset_label, read_jsonl_rows
from safemlrm.datasets._tabular import ColumnMap, row_to_sample
from safemlrm.datasets.mm_safetybench import SCENARIO_NAMES
from safemlrm.plugin_api import ImageRef, PluginContext, Sample, datasets

SCENARIOS = tuple(SCENARIO_NAMES.values())  # the 13 MM-SafetyBench scenarios, in order


def demo_benchmark_path() -> Path:
    """Where the bundled demo JSONL lies inside the installed package."""
    return Path(str(resources.files("safemlrm") / "data" / "demo" / "benchmark.jsonl"))


def _no_images(value: object, where: str) -> tuple[ImageRef, ...]:
    return ()


@datasets.register("demo")
class DemoDataset:
    """Bundled demo: 26 harmful requests (2 per MM-SafetyBench scenario) and 8 benign look-alikes.

    Written for this project, at the level of a benchmark question with no operational detail. Each
    harmful item has a key phrase (for typography / FigStep attacks), a MM-SafetyBench-style
    `rephrased_question` and a FigStep-style `figstep_instruction` in its metadata. Eight benign
    prompts (category "Benign", benign=true) that look harmful at first sight measure over-refusal.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        categories: list[str] | None = Field(default=None, description="keep only these scenarios")
        include_benign: bool = Field(default=True, description="include the benign look-alike prompts")

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params
        self.ctx = ctx

    def load(self) -> Iterator[Sample]:
        path = demo_benchmark_path()
        return check_unique(self._samples(path), str(path))

    def _samples(self, path: Path) -> Iterator[Sample]:
        keep = category_filter(self.params.categories)
        name = dataset_label(self.ctx, "demo")
        for index, (line, row) in enumerate(read_jsonl_rows(path)):
            sample = row_to_sample(
                row, where=f"{path}:{line}", index=index, columns=ColumnMap(), dataset=name, images=_no_images
            )
            if sample.benign and not self.params.include_benign:
                continue
            if keep(sample.category):
                yield sample
