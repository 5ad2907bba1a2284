"""MM-SafetyBench SD+TYPO: a picture of the key phrase stacked above its typography."""

from __future__ import annotations

from typing import ClassVar

from safemlrm.attacks._common import user_probe
from safemlrm.attacks._sd import SDImageSource, SDSourceParams
from safemlrm.attacks.typography import TypographyParams, key_phrase_of, render_typography, stack_images, typo_prompt
from safemlrm.plugin_api import PluginContext, Probe, Sample, attacks


@attacks.register("sd_typography")
class SDTypographyAttack:
    """MM-SafetyBench SD+TYPO: a picture of the key phrase stacked above its typography, with the rephrased question.

    The picture comes from `image_dir` (a folder keyed by sample id, e.g. MM-SafetyBench's own SD
    images), the sample's own image (MM-SafetyBench loaded with `variant: SD` and an image root), or
    a diffusers pipeline (`image_source: diffusers`, needs `safemlrm[diffusion]`). The text is the
    sample's `rephrased_question` ("The bottom of the image shows ..."), as upstream.
    """

    input_modalities: ClassVar[frozenset[str]] = frozenset({"text", "image"})
    output_modalities: ClassVar[frozenset[str]] = frozenset({"text", "image"})

    class Params(TypographyParams, SDSourceParams):
        pass

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params
        self.ctx = ctx
        self.label = ctx.label or "sd_typography"
        self.source = SDImageSource(params, ctx, self.label)

    async def apply(self, sample: Sample) -> list[Probe]:
        p = self.params
        picture = await self.source.image(sample)
        phrase = key_phrase_of(sample, p.missing_key_phrase, self.label)
        typography = render_typography(phrase, font_size=p.font_size, width=p.width, font=p.font)
        ref = self.ctx.save_image(stack_images(picture, typography), stem="sdtypo")
        return [user_probe(sample, self.label, p, text=typo_prompt(sample, p), images=[ref])]
