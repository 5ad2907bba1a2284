"""Generic JSON Lines loader with a column mapping."""

from __future__ import annotations

from collections.abc import Iterator

from safemlrm.context import PluginContext
from safemlrm.datasets._common import (
    category_filter,
    check_unique,
    dataset_label,
    read_jsonl_rows,
    require_file,
)
from safemlrm.datasets._tabular import TabularParams, path_image_resolver, row_to_sample
from safemlrm.plugins import datasets
from safemlrm.types import Sample


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
        p = self.params
        images = path_image_resolver(
            self.image_root,
            verify=p.verify_images,
            allow_outside_root=p.allow_outside_root,
            separator=p.image_separator,
        )
        keep = category_filter(p.categories)
        name = dataset_label(self.ctx, "jsonl")
        seen_keys: set[str] = set()
        for index, (line, row) in enumerate(read_jsonl_rows(self.path)):
            seen_keys.update(row)
            sample = row_to_sample(
                row,
                where=f"{self.path}:{line}",
                index=index,
                columns=p.columns,
                dataset=name,
                images=images,
                default_category=p.default_category,
                keep_metadata=p.keep_metadata,
            )
            if keep(sample.category):
                yield sample
        # an optional column named in the config but found in no row is almost surely a typo
        p.columns.check_columns(sorted(seen_keys), str(self.path))
