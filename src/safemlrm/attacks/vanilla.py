"""The prompt as is: text only (optionally with a blank image for models that need one)."""

from __future__ import annotations

from typing import ClassVar

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from safemlrm.core.types import ContentPart, ImagePart, Message, Probe, Sample, TextPart
from safemlrm.plugin_api import PluginContext, attacks


@attacks.register("vanilla")
class VanillaAttack:
    """The sample's prompt as is, text only; the study's "vanilla" condition."""

    input_modalities: ClassVar[frozenset[str]] = frozenset({"text"})
    output_modalities: ClassVar[frozenset[str]] = frozenset({"text"})

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        blank_image: bool = Field(default=False, description="attach a white image (for image-only models)")
        blank_size: int = Field(default=336, ge=8, le=4096)
        keep_sample_images: bool = Field(default=False, description="send the sample's own images too")

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params
        self.ctx = ctx

    async def apply(self, sample: Sample) -> list[Probe]:
        content: list[ContentPart] = []
        if self.params.keep_sample_images:
            content.extend(ImagePart(image=ref) for ref in sample.images)
        if self.params.blank_image:
            size = self.params.blank_size
            ref = self.ctx.save_image(Image.new("RGB", (size, size), "white"), stem="blank")
            content.append(ImagePart(image=ref))
        content.append(TextPart(text=sample.prompt))
        return [
            Probe(
                sample_key=sample.key,
                sample_id=sample.id,
                attack=self.ctx.label or "vanilla",
                attack_params=self.params.model_dump(),
                messages=(Message(role="user", content=tuple(content)),),
            )
        ]
