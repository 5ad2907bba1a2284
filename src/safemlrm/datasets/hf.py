"""Hugging Face `datasets`: a hub dataset or a local folder, with a column mapping."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from safemlrm.datasets._common import (
    DatasetError,
    category_filter,
    check_unique,
    dataset_label,
    image_ref,
)
from safemlrm.datasets._tabular import TabularParams, row_to_sample
from safemlrm.plugin_api import ImageRef, PluginContext, Sample, datasets

_HUB_NAME = re.compile(r"^[\w.-]+(/[\w.-]+)?$")
_SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def _import_datasets() -> Any:
    try:
        import datasets as hf_datasets
    except ImportError as exc:
        raise ImportError(
            "the `hf` dataset needs the Hugging Face datasets package: pip install 'safemlrm[datasets]'"
        ) from exc
    return hf_datasets


def _json_safe(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, list):
        return all(_json_safe(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_safe(v) for k, v in value.items())
    return False


@datasets.register("hf")
class HuggingFaceDataset:
    """A Hugging Face dataset (hub name, `save_to_disk` folder or data files) mapped by `columns`.

    Image columns may hold decoded images (the `Image` feature), `{bytes, path}` records or paths;
    decoded images are written once, content-addressed, into the run's assets. Unmapped columns
    that are plain JSON values are kept in Sample.metadata. Needs `pip install 'safemlrm[datasets]'`.
    """

    class Params(TabularParams):
        path: str = Field(description="hub dataset name (owner/name) or a local folder")
        name: str | None = Field(default=None, description="dataset configuration name")
        split: str = Field(default="train", description="which split to read")
        revision: str | None = Field(default=None, description="hub revision (branch, tag or commit)")
        data_files: list[str] | None = Field(default=None, description="data files inside a local folder")
        streaming: bool = Field(default=False, description="stream rows from the hub without a full download")

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params
        self.ctx = ctx
        self.local = ctx.resolve(params.path)
        self.image_root = (
            ctx.resolve(params.image_root)
            if params.image_root
            else (self.local if self.local.is_dir() else ctx.base_dir)
        )

    def _open(self) -> Any:
        hf = _import_datasets()
        p = self.params
        source = str(self.local)
        try:
            if self.local.is_dir() and any((self.local / m).exists() for m in _SAVED_MARKERS):
                loaded = hf.load_from_disk(source)
                if isinstance(loaded, hf.DatasetDict):
                    if p.split not in loaded:
                        raise DatasetError(
                            f"{source}: no split {p.split!r}; the splits are: {', '.join(loaded.keys())}"
                        )
                    return loaded[p.split]
                return loaded
            if self.local.exists():
                return hf.load_dataset(
                    source, name=p.name, split=p.split, data_files=p.data_files, streaming=p.streaming
                )
            if not _HUB_NAME.match(p.path) or p.path.startswith((".", "/", "~")):
                raise DatasetError(f"{source}: dataset folder not found (and {p.path!r} is not a hub name)")
            return hf.load_dataset(p.path, name=p.name, split=p.split, revision=p.revision, streaming=p.streaming)
        except DatasetError:
            raise
        except Exception as exc:  # hub / network / format errors come in many types
            raise DatasetError(f"{p.path}: cannot load the Hugging Face dataset: {type(exc).__name__}: {exc}") from exc

    def load(self) -> Iterator[Sample]:
        data = self._open()
        columns = list(getattr(data, "column_names", None) or [])
        if columns:
            self.params.columns.check_columns(columns, f"{self.params.path} [{self.params.split}]")
        return check_unique(self._samples(data), f"{self.params.path} [{self.params.split}]")

    def _image_refs(self, value: Any, where: str) -> tuple[ImageRef, ...]:
        from PIL import Image, UnidentifiedImageError

        if value is None or value == "":
            return ()
        refs: list[ImageRef] = []
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, Image.Image):
                refs.append(self.ctx.save_image(item, stem="hf"))
            elif isinstance(item, Mapping) and item.get("bytes"):
                try:
                    with Image.open(io.BytesIO(item["bytes"])) as image:
                        image.load()
                        refs.append(self.ctx.save_image(image, stem="hf"))
                except (UnidentifiedImageError, OSError) as exc:
                    raise DatasetError(f"{where}: image bytes are not a readable image: {exc}") from exc
            elif isinstance(item, Mapping) and item.get("path"):
                refs.append(self._path_ref(str(item["path"]), where))
            elif isinstance(item, str):
                refs.append(self._path_ref(item, where))
            else:
                raise DatasetError(f"{where}: cannot read an image from a {type(item).__name__}")
        return tuple(refs)

    def _path_ref(self, value: str, where: str) -> ImageRef:
        p = self.params
        return image_ref(
            Path(value),
            root=self.image_root,
            where=where,
            verify=p.verify_images,
            allow_outside_root=p.allow_outside_root,
        )

    def _samples(self, data: Any) -> Iterator[Sample]:
        p = self.params
        keep = category_filter(p.categories)
        name = dataset_label(self.ctx, "hf")
        image_column = p.columns.image
        for index, row in enumerate(data):
            where = f"{p.path} [{p.split}] row {index}"
            plain = {k: v for k, v in row.items() if k == image_column or _json_safe(v)}
            sample = row_to_sample(
                plain,
                where=where,
                index=index,
                columns=p.columns,
                dataset=name,
                images=self._image_refs,
                default_category=p.default_category,
                keep_metadata=p.keep_metadata,
            )
            if keep(sample.category):
                yield sample
