"""HarmBench behaviours (Mazeika et al., 2024): text (standard, contextual, copyright) and multimodal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from safemlrm.datasets._common import (
    DatasetError,
    category_filter,
    check_unique,
    csv_header,
    dataset_label,
    find_file,
    image_ref,
    read_csv_rows,
    require_dir,
    text_field,
)
from safemlrm.plugin_api import MUST_EXIST, ImageRef, PluginContext, Sample, datasets

# HarmBench's own layout of a contextual behaviour's test case (context, separator, behaviour).
CONTEXT_TEMPLATE = "{context}\n\n---\n\n{behavior}"


@datasets.register("harmbench")
class HarmBenchDataset:
    """HarmBench behaviours: text (standard / contextual / copyright) or multimodal with your image folder.

    Contextual behaviours send `{context}\\n\\n---\\n\\n{behavior}` as HarmBench does, with the
    behaviour as the judge instruction and `ContextString` kept in metadata `context`. A multimodal
    file (it has `ImageFileName`) needs `image_dir`, the folder of HarmBench's images.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str = Field(
            description="a HarmBench behaviours CSV (text or multimodal), or its folder",
            json_schema_extra=MUST_EXIST,
        )
        image_dir: str | None = Field(
            default=None, description="folder of the multimodal behaviours' images",
            json_schema_extra=MUST_EXIST,
        )
        functional_categories: list[str] | None = Field(
            default=None, description="keep only these (standard, contextual, copyright, multimodal)"
        )
        categories: list[str] | None = Field(default=None, description="keep only these semantic categories")
        verify_images: bool = Field(default=True, description="open each image once to catch corrupt files")

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params
        self.ctx = ctx
        self.location = ctx.resolve(params.path)

    def load(self) -> Iterator[Sample]:
        path = find_file(self.location, ["harmbench_behaviors_text_all.csv"], "HarmBench behaviours CSV")
        multimodal = "ImageFileName" in csv_header(path)
        image_dir = None
        if multimodal:
            if self.params.image_dir is None:
                raise DatasetError(
                    f"{path}: multimodal behaviours need `image_dir`, the folder holding their images "
                    "(HarmBench ships them separately)"
                )
            image_dir = require_dir(self.ctx.resolve(self.params.image_dir), "HarmBench image folder")
        return check_unique(self._samples(path, image_dir), str(path))

    def _samples(self, path: Path, image_dir: Path | None) -> Iterator[Sample]:
        keep_functional = category_filter(self.params.functional_categories)
        keep_semantic = category_filter(self.params.categories)
        name = dataset_label(self.ctx, "harmbench")
        for line, row in read_csv_rows(path, required=("Behavior", "BehaviorID", "FunctionalCategory")):
            where = f"{path}:{line}"
            functional = text_field(row, "FunctionalCategory", where)
            semantic = text_field(row, "SemanticCategory", where, required=False)
            if not keep_functional(functional) or not keep_semantic(semantic):
                continue
            behavior = text_field(row, "Behavior", where)
            context = text_field(row, "ContextString", where, required=False)
            prompt = CONTEXT_TEMPLATE.format(context=context, behavior=behavior) if context else behavior
            metadata: dict[str, str] = {"functional_category": functional, "tags": row.get("Tags", "")}
            if context:
                metadata["context"] = context
            images: tuple[ImageRef, ...] = ()
            if image_dir is not None:
                file_name = text_field(row, "ImageFileName", where)
                images = (image_ref(file_name, root=image_dir, where=where, verify=self.params.verify_images),)
                metadata["image_description"] = row.get("ImageDescription", "")
                metadata["redacted_image_description"] = row.get("RedactedImageDescription", "")
            yield Sample(
                id=text_field(row, "BehaviorID", where),
                dataset=name,
                category=semantic or functional,
                instruction=behavior,
                prompt=prompt,
                images=images,
                metadata=metadata,
            )
