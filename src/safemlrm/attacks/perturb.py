"""Image perturbations (noise, rotation, low contrast, coloured text) over another attack's images."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from safemlrm.attacks._common import InnerAttack, build_inner, map_images, open_image, relabel
from safemlrm.plugin_api import ImageRef, PluginContext, Probe, Sample, attacks, cache_key

if TYPE_CHECKING:
    from PIL.Image import Image


def recolour_text(image: Image, colour: str) -> Image:
    """Dark pixels take `colour`, light ones stay white, anti-aliased edges blend between them."""
    from PIL import ImageColor, ImageOps

    return ImageOps.colorize(image.convert("L"), black=ImageColor.getrgb(colour), white=(255, 255, 255))


def perturb_image(
    image: Image,
    *,
    noise_std: float = 0.0,
    rotate: float = 0.0,
    contrast: float = 1.0,
    text_colour: str | None = None,
    seed: int = 0,
) -> Image:
    """Apply, in this order: text colour, contrast, rotation (the canvas grows), Gaussian noise."""
    import numpy as np
    from PIL import Image as PILImage
    from PIL import ImageEnhance

    result = image.convert("RGB")
    if text_colour:
        result = recolour_text(result, text_colour)
    if contrast != 1.0:
        result = ImageEnhance.Contrast(result).enhance(contrast)
    if rotate:
        # fill the grown canvas with the background (the corner pixel), not a visible frame
        background = result.getpixel((0, 0))
        result = result.rotate(rotate, expand=True, fillcolor=background, resample=PILImage.Resampling.BICUBIC)
    if noise_std > 0:
        rng = np.random.default_rng(seed)
        pixels = np.asarray(result, dtype=np.float32)
        noisy = pixels + rng.normal(0.0, noise_std, size=pixels.shape)
        result = PILImage.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8), "RGB")
    return result


class PerturbParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    over: InnerAttack = Field(
        default_factory=lambda: InnerAttack(kind="typography"),
        description="the image attack whose images are perturbed",
    )
    noise_std: float = Field(default=0.0, ge=0, le=128, description="Gaussian noise, std in 0-255 pixel units")
    rotate: float = Field(default=0.0, ge=-180, le=180, description="rotation in degrees, counter-clockwise")
    contrast: float = Field(default=1.0, gt=0, le=4, description="contrast factor; below 1 lowers it")
    text_colour: str | None = Field(default=None, description="recolour dark text, e.g. '#c00000' or 'navy'")

    @model_validator(mode="after")
    def _does_something(self) -> PerturbParams:
        if not (self.noise_std or self.rotate or self.contrast != 1.0 or self.text_colour):
            raise ValueError("set at least one of noise_std, rotate, contrast, text_colour")
        if self.text_colour:
            from PIL import ImageColor

            try:
                ImageColor.getrgb(self.text_colour)
            except ValueError as exc:
                raise ValueError(f"text_colour: {exc}") from exc
        return self


@attacks.register("perturb")
class PerturbAttack:
    """Perturbs the images of another attack (`over`, default typography): noise, rotation, contrast, text colour.

    Probes keep the inner attack's text; each image is replaced by its perturbed copy (written once,
    content-addressed). Noise is seeded by the run seed and the image's hash, so reruns match.
    """

    input_modalities: ClassVar[frozenset[str]] = frozenset({"text", "image"})
    output_modalities: ClassVar[frozenset[str]] = frozenset({"text", "image"})

    class Params(PerturbParams):
        pass

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params
        self.ctx = ctx
        self.label = ctx.label or "perturb"
        self.inner = build_inner(params.over, ctx)

    def _perturb(self, ref: ImageRef) -> ImageRef:
        p = self.params
        seed = int(cache_key(self.ctx.seed, ref.sha256)[:12], 16)
        image = perturb_image(
            open_image(ref),
            noise_std=p.noise_std,
            rotate=p.rotate,
            contrast=p.contrast,
            text_colour=p.text_colour,
            seed=seed,
        )
        return self.ctx.save_image(image, stem="perturbed")

    async def apply(self, sample: Sample) -> list[Probe]:
        probes = []
        for probe in await self.inner.apply(sample):
            if not probe.images:
                raise ValueError(
                    f"{self.label}: attack {self.params.over.kind!r} gave sample {sample.id!r} no image to perturb"
                )
            probes.append(relabel(probe, sample, self.label, self.params, messages=map_images(probe, self._perturb)))
        return probes
