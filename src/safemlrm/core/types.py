"""Core data types that flow through every stage of a run.

All are frozen pydantic models: they are hashed into store keys, so they must not change after
creation. Scores use NaN (never 0) for a judge that failed.
"""

from __future__ import annotations

import math
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from safemlrm.core.hashing import canonical_json, content_hash, digest


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")


def _without_image_paths(value: Any) -> Any:
    """Keys hash image bytes, not where the image sits: moving a dataset keeps its keys."""
    if isinstance(value, dict):
        if "sha256" in value and "path" in value:
            return {"sha256": value["sha256"]}
        return {k: _without_image_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_image_paths(v) for v in value]
    return value


def _model_key(model: BaseModel) -> str:
    """content_hash of the model without image paths; the walk is skipped when no image ref can be in it."""
    data = model.model_dump(mode="json")
    raw = canonical_json(data)
    if b'"sha256"' in raw:  # a JSON key "sha256" must appear for _without_image_paths to change anything
        return content_hash(_without_image_paths(data))
    return digest(raw)


class Part(StrEnum):
    """Which part of a model output a judgement scores."""

    REASONING = "reasoning"
    ANSWER = "answer"
    WHOLE = "whole"


class ImageRef(Frozen):
    """An image on disk, identified by the hash of its bytes so probes that use it hash stably."""

    path: str
    sha256: str


class TextPart(Frozen):
    type: Literal["text"] = "text"
    text: str


class ImagePart(Frozen):
    type: Literal["image"] = "image"
    image: ImageRef


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class Message(Frozen):
    role: Literal["system", "user", "assistant"]
    content: tuple[ContentPart, ...]

    @property
    def text(self) -> str:
        return "\n".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def images(self) -> tuple[ImageRef, ...]:
        return tuple(p.image for p in self.content if isinstance(p, ImagePart))


class Sample(Frozen):
    """One benchmark item.

    `instruction` is the harmful intent the judge scores against; `prompt` is what a vanilla attack
    sends. They differ for benchmarks (MM-SafetyBench) whose attacked prompt hides the intent.
    `benign` marks prompts that a model should answer (over-refusal tests).
    """

    id: str
    dataset: str
    category: str = ""
    instruction: str
    prompt: str
    images: tuple[ImageRef, ...] = ()
    key_phrase: str = ""
    benign: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)

    @cached_property
    def key(self) -> str:
        return _model_key(self)


class Probe(Frozen):
    """One attacked version of a sample, ready to send to a target."""

    sample_key: str
    sample_id: str
    attack: str
    attack_params: dict[str, Any] = Field(default_factory=dict)
    messages: tuple[Message, ...]

    @cached_property
    def key(self) -> str:
        return _model_key(self)

    @property
    def user_text(self) -> str:
        return "\n".join(m.text for m in self.messages if m.role == "user")

    @property
    def images(self) -> tuple[ImageRef, ...]:
        return tuple(img for m in self.messages for img in m.images)


class Generation(Frozen):
    """What a target returned for one probe. An error is a value, not a missing row."""

    probe_key: str
    target: str
    text: str = ""
    reasoning: str | None = None  # native reasoning field (reasoning_content) when the API has one
    finish_reason: str | None = None
    usage: dict[str, int] = Field(default_factory=dict)
    latency_s: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class ParseStatus(StrEnum):
    OK = "ok"
    NO_REASONING = "no_reasoning"  # no reasoning markers: the whole text is the answer
    UNTERMINATED = "unterminated"  # reasoning opened but never closed: all reasoning, no answer
    MISSING_ANSWER = "missing_answer"  # reasoning closed but no answer followed
    EMPTY = "empty"
    ERROR = "error"  # the generation itself failed


class ParsedOutput(Frozen):
    """A generation split into reasoning and answer. `raw` always keeps the full text."""

    raw: str
    reasoning: str
    answer: str
    status: ParseStatus
    parser: str

    def text(self, part: Part) -> str:
        if part is Part.REASONING:
            return self.reasoning
        if part is Part.ANSWER:
            return self.answer
        return self.raw


class Judgement(Frozen):
    """A judge's verdict on one text. `score` is on the 0-5 harm scale, NaN when the judge failed."""

    judge: str
    judge_version: str = "1"
    score: float
    label: str = ""
    rationale: str = ""
    raw: str = ""
    error: str | None = None

    @property
    def failed(self) -> bool:
        return math.isnan(self.score)


NAN = float("nan")


class ScoreRow(Frozen):
    """One flat analysis row: a judge's score of one part of one generation.

    The analysis layer works on these (and on DataFrames of them); NaN scores are kept here and
    excluded, and counted, by the metrics.
    """

    target: str
    attack: str
    dataset: str
    category: str
    sample_id: str
    probe_key: str
    benign: bool
    part: Part
    judge: str
    score: float
    label: str = ""
    parse_status: ParseStatus = ParseStatus.OK
    sample_index: int = 0  # which sample of the probe (several when a target draws k per probe)
