"""What the attacks share: building probes, opening probe images, and composing attacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from safemlrm.core.secrets import redact
from safemlrm.core.types import ContentPart, ImagePart, ImageRef, Message, Probe, Sample, TextPart

if TYPE_CHECKING:
    from PIL.Image import Image

    from safemlrm.core.context import PluginContext
    from safemlrm.core.protocols import Attack


class InnerAttack(BaseModel):
    """Another attack, by registry name and params, that an attack builds on (`over` / `then`)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="registered attack name, e.g. typography")
    params: dict[str, Any] = Field(default_factory=dict, description="that attack's params")


def build_inner(spec: InnerAttack, ctx: PluginContext) -> Attack:
    from safemlrm.core import plugins

    label = f"{ctx.label}.{spec.kind}" if ctx.label else spec.kind
    return plugins.attacks.create(spec.kind, spec.params, ctx.with_label(label))


def params_record(params: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """The params as stored with each probe, secrets (an inner model's api_key ...) redacted."""
    data = params.model_dump(mode="json") if isinstance(params, BaseModel) else params
    cleaned: dict[str, Any] = redact(data)
    return cleaned


def user_probe(
    sample: Sample,
    attack: str,
    params: BaseModel | dict[str, Any],
    *,
    text: str,
    images: Sequence[ImageRef] = (),
) -> Probe:
    """One user turn: the images first, then the text (the order the original attacks used)."""
    content: list[ContentPart] = [ImagePart(image=ref) for ref in images]
    content.append(TextPart(text=text))
    return Probe(
        sample_key=sample.key,
        sample_id=sample.id,
        attack=attack,
        attack_params=params_record(params),
        messages=(Message(role="user", content=tuple(content)),),
    )


def relabel(probe: Probe, sample: Sample, attack: str, params: BaseModel, **changes: Any) -> Probe:
    """An inner attack's probe re-owned by the outer attack (and by the original sample)."""
    update: dict[str, Any] = {
        "sample_key": sample.key,
        "sample_id": sample.id,
        "attack": attack,
        "attack_params": params_record(params),
        **changes,
    }
    return Probe.model_validate({**probe.model_dump(), **update})


def open_image(ref: ImageRef) -> Image:
    from PIL import Image as PILImage

    with PILImage.open(ref.path) as image:
        return image.convert("RGB")


def map_images(probe: Probe, transform: Any) -> tuple[Message, ...]:
    """The probe's messages with every image replaced by `transform(ref) -> ImageRef`."""
    messages = []
    for message in probe.messages:
        content: list[ContentPart] = [
            ImagePart(image=transform(part.image)) if isinstance(part, ImagePart) else part for part in message.content
        ]
        messages.append(Message(role=message.role, content=tuple(content)))
    return tuple(messages)


def map_last_user_text(probe: Probe, transform: Any) -> tuple[Message, ...]:
    """The probe's messages with the last text part of the last user turn passed through `transform`."""
    messages = list(probe.messages)
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.role != "user":
            continue
        content = list(message.content)
        for position in range(len(content) - 1, -1, -1):
            part = content[position]
            if isinstance(part, TextPart):
                content[position] = TextPart(text=transform(part.text))
                messages[index] = Message(role="user", content=tuple(content))
                return tuple(messages)
        content.append(TextPart(text=transform("")))
        messages[index] = Message(role="user", content=tuple(content))
        return tuple(messages)
    raise ValueError(f"probe for sample {probe.sample_id!r} has no user turn to rewrite")
