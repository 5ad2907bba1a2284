"""Where the SD attacks get their picture: the sample's own image, a folder, or a diffusers pipeline."""

from __future__ import annotations

import asyncio
import string
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from safemlrm.attacks._common import open_image
from safemlrm.plugin_api import MUST_EXIST, PluginContext, Sample, cache_key

if TYPE_CHECKING:
    from PIL.Image import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


class DiffusionParams(BaseModel):
    """Generate the picture with a diffusers text-to-image pipeline (needs `safemlrm[diffusion]`)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(default="stabilityai/stable-diffusion-xl-base-1.0", description="hub id or local path")
    prompt_template: str = Field(default="A photo of {key_phrase}", description="{key_phrase}, {instruction}")
    steps: int = Field(default=30, ge=1, le=500)
    size: int = Field(default=1024, ge=64, le=4096, description="width and height in pixels")
    guidance_scale: float | None = Field(default=None, description="the pipeline's default when unset")
    device: str | None = Field(default=None, description="cuda when available, else cpu")
    dtype: Literal["float16", "bfloat16", "float32"] | None = Field(
        default=None, description="float16 on cuda, float32 on cpu when unset"
    )


class SDSourceParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_source: Literal["auto", "sample", "folder", "diffusers"] = Field(
        default="auto",
        description="auto: image_dir when set, else the sample's own image; diffusers: generate one",
    )
    image_dir: str | None = Field(
        default=None, description="folder of pictures keyed by sample id",
        json_schema_extra=MUST_EXIST,
    )
    image_pattern: str = Field(
        default="{id}",
        description="file name in image_dir without suffix; fields: id, category, and metadata keys "
        "(MM-SafetyBench: '{scenario_id}/SD/{question_id}')",
    )
    diffusion: DiffusionParams = Field(default_factory=DiffusionParams)


class SDImageSource:
    """Finds (or generates, once per prompt and seed) the picture for a sample."""

    def __init__(self, params: SDSourceParams, ctx: PluginContext, attack: str) -> None:
        self.params = params
        self.ctx = ctx
        self.attack = attack
        self.image_dir = ctx.resolve(params.image_dir) if params.image_dir else None
        self._pipeline: Any = None
        self._lock = asyncio.Lock()

    def mode(self) -> str:
        if self.params.image_source != "auto":
            return self.params.image_source
        return "folder" if self.image_dir is not None else "sample"

    async def image(self, sample: Sample) -> Image:
        mode = self.mode()
        if mode == "folder":
            return open_image_file(self._folder_path(sample))
        if mode == "sample":
            if not sample.images:
                raise ValueError(
                    f"{self.attack}: sample {sample.id!r} has no image to use as the SD picture; set image_dir "
                    "(a folder keyed by sample id), load MM-SafetyBench with `variant: SD` and `image_root`, "
                    "or use `image_source: diffusers`"
                )
            return open_image(sample.images[0])
        return await self._generate(sample)

    def _folder_path(self, sample: Sample) -> Path:
        assert self.image_dir is not None
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"{self.attack}: image_dir {self.image_dir} is not a folder")
        fields = {**{k: v for k, v in sample.metadata.items() if isinstance(v, (str, int))}}
        fields.update(id=sample.id, category=sample.category)
        names = [n for _, n, _, _ in string.Formatter().parse(self.params.image_pattern) if n]
        missing = [n for n in names if n not in fields]
        if missing:
            raise ValueError(
                f"{self.attack}: image_pattern {self.params.image_pattern!r} uses {missing} that sample "
                f"{sample.id!r} lacks; available: {sorted(fields)}"
            )
        stem = self.params.image_pattern.format(**fields)
        base = self.image_dir / stem
        candidates = [base] if base.suffix.lower() in IMAGE_SUFFIXES else []
        candidates += [base.with_name(base.name + suffix) for suffix in IMAGE_SUFFIXES]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(
            f"{self.attack}: no picture for sample {sample.id!r} in {self.image_dir} "
            f"(looked for {stem} with {', '.join(IMAGE_SUFFIXES)})"
        )

    async def _generate(self, sample: Sample) -> Image:
        d = self.params.diffusion
        prompt = d.prompt_template.format(
            key_phrase=sample.key_phrase or sample.instruction, instruction=sample.instruction
        )
        key = cache_key("sd", d.model_dump(exclude={"device"}), prompt, self.ctx.seed)
        cached = self.ctx.assets_dir / "sd-generated" / f"{key}.png"
        if cached.is_file():
            return open_image_file(cached)
        async with self._lock:  # one generation at a time on the one pipeline
            if self._pipeline is None:
                self._pipeline = await asyncio.to_thread(self._load_pipeline)
            image = await asyncio.to_thread(self._run_pipeline, prompt)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        image.save(tmp, format="PNG")
        tmp.replace(cached)
        return image.convert("RGB")

    def _load_pipeline(self) -> Any:
        try:
            from diffusers import AutoPipelineForText2Image
        except ImportError as exc:
            raise ImportError(
                f"{self.attack}: `image_source: diffusers` needs diffusers (and torch): "
                "pip install 'safemlrm[diffusion]' (or give pictures with image_dir)"
            ) from exc
        import torch  # a dependency of diffusers

        d = self.params.diffusion
        device = d.device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype_name = d.dtype or ("float16" if device.startswith("cuda") else "float32")
        pipeline = AutoPipelineForText2Image.from_pretrained(d.model, torch_dtype=getattr(torch, dtype_name))
        return pipeline.to(device)

    def _run_pipeline(self, prompt: str) -> Image:
        import torch

        d = self.params.diffusion
        generator = torch.Generator(device="cpu").manual_seed(self.ctx.seed)
        kwargs: dict[str, Any] = {"num_inference_steps": d.steps, "height": d.size, "width": d.size}
        if d.guidance_scale is not None:
            kwargs["guidance_scale"] = d.guidance_scale
        result = self._pipeline(prompt, generator=generator, **kwargs)
        image: Image = result.images[0]
        return image


def open_image_file(path: Path) -> Image:
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read picture {path}: {exc}") from exc
