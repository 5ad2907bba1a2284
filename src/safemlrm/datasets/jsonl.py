"""Generic JSON Lines loader with a column mapping."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from safemlrm.datasets._common import check_unique, dataset_label, read_jsonl_rows, require_file
from safemlrm.datasets._tabular import TabularParams, tabular_samples
from safemlrm.plugin_api import PluginContext, Sample, datasets


@datasets.register("jsonl")
class JsonlDataset:
    """A JSON Lines file of your own, one object per line, mapped to samples by `columns`.

    Images are paths relative to `image_root` (default: the file's folder); a key `metadata` holding
    an object is merged into Sample.metadata, other unmapped keys are kept there as they are.
    """

    class Params(TabularParams):
        pass

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params
        self.ctx = ctx
        self.path = ctx.resolve(params.path)
        self.image_root = ctx.resolve(params.image_root) if params.image_root else self.path.parent

    def load(self) -> Iterator[Sample]:
        require_file(self.path, "JSONL file")
        return check_unique(self._samples(), str(self.path))

    def _samples(self) -> Iterator[Sample]:
        seen_keys: set[str] = set()

        def rows() -> Iterator[tuple[int, dict[str, Any]]]:
            for line, row in read_jsonl_rows(self.path):
                seen_keys.update(row)
                yield line, row

        yield from tabular_samples(
            rows(),
            self.params,
            path=self.path,
            image_root=self.image_root,
            dataset=dataset_label(self.ctx, "jsonl"),
        )
        # an optional column named in the config but found in no row is almost surely a typo
        self.params.columns.check_columns(sorted(seen_keys), str(self.path))
