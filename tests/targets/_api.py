"""Helpers shared by the API-target tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from safemlrm.core.hashing import file_sha256
from safemlrm.core.types import ImagePart, ImageRef, Message, Probe, TextPart

SECRET = "sk-test-7f3a9c1e5b2d4680bbbb"


def probe(text: str, sample_id: str = "s1", images: tuple[ImageRef, ...] = (), system: str | None = None) -> Probe:
    content: tuple[TextPart | ImagePart, ...] = (*(ImagePart(image=img) for img in images), TextPart(text=text))
    messages = (Message(role="user", content=content),)
    if system is not None:
        messages = (Message(role="system", content=(TextPart(text=system),)), *messages)
    return Probe(sample_key=f"key-{sample_id}", sample_id=sample_id, attack="vanilla", messages=messages)


def png(path: Path, size: tuple[int, int], color: tuple[int, int, int] = (200, 30, 30)) -> ImageRef:
    Image.new("RGB", size, color).save(path, format="PNG")
    return ImageRef(path=str(path), sha256=file_sha256(str(path)))


class FakeSleep:
    """Records the waits instead of sleeping."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
