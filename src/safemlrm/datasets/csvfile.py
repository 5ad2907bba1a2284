"""Generic CSV loader with a column mapping."""

from __future__ import annotations

from collections.abc import Iterator

from safemlrm.datasets._common import check_unique, csv_header, dataset_label, read_csv_rows
from safemlrm.datasets._tabular import TabularParams, tabular_samples
from safemlrm.plugin_api import PluginContext, Sample, datasets


@datasets.register("csv")
class CsvDataset:
    """A CSV file of your own with a header row, mapped to samples by `columns`.

    Images are paths relative to `image_root` (default: the file's folder); several images in one
    cell can be split with `image_separator`. Unmapped columns are kept in Sample.metadata.
    """

    class Params(TabularParams):
        pass

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params
        self.ctx = ctx
        self.path = ctx.resolve(params.path)
        self.image_root = ctx.resolve(params.image_root) if params.image_root else self.path.parent

    def load(self) -> Iterator[Sample]:
        self.params.columns.check_columns(csv_header(self.path), str(self.path))
        return check_unique(self._samples(), str(self.path))

    def _samples(self) -> Iterator[Sample]:
        return tabular_samples(
            read_csv_rows(self.path),
            self.params,
            path=self.path,
            image_root=self.image_root,
            dataset=dataset_label(self.ctx, "csv"),
        )
