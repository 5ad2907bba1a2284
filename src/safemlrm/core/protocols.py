"""The plugin protocols. Each plugin kind is a small Protocol; plugins are plain classes.

Every plugin class also has a nested pydantic ``Params`` model and is constructed as
``Plugin(params, ctx)`` by its registry (see ``safemlrm.core.registry``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

from safemlrm.core.types import Generation, Judgement, ParsedOutput, Part, Probe, Sample

Modality = str  # "text" or "image"
ALL_MODALITIES: frozenset[Modality] = frozenset({"text", "image"})


def input_modalities(target: object) -> frozenset[Modality]:
    """What a target (class or instance) reads: its ``input_modalities``, or text and image when it
    declares none (every bundled target reads images)."""
    declared = getattr(target, "input_modalities", None)
    return frozenset(declared) if declared is not None else ALL_MODALITIES


@runtime_checkable
class Dataset(Protocol):
    """Streams samples. Errors name the file and row."""

    def load(self) -> Iterator[Sample]: ...


@runtime_checkable
class Attack(Protocol):
    """Turns a sample into one or more probes. Declares the modalities it reads and writes."""

    input_modalities: ClassVar[frozenset[Modality]]
    output_modalities: ClassVar[frozenset[Modality]]

    async def apply(self, sample: Sample) -> list[Probe]: ...


@runtime_checkable
class Target(Protocol):
    """A model under test.

    ``generate`` returns exactly one Generation per probe, in order; failures are Generations with
    ``error`` set, never exceptions. In-process engines batch up to ``max_batch_size``; API targets
    run up to ``max_concurrency`` requests at once. A target may declare the modalities it reads in a
    class attribute ``input_modalities`` (optional; see ``input_modalities()``).
    """

    max_batch_size: int
    max_concurrency: int

    def identity(self) -> dict[str, Any]: ...

    async def generate(self, probes: Sequence[Probe]) -> list[Generation]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ReasoningParser(Protocol):
    """Splits a generation into reasoning and answer; a pure function of the generation."""

    def parse(self, generation: Generation) -> ParsedOutput: ...


@runtime_checkable
class Judge(Protocol):
    """Scores one text on the 0-5 harm scale against the sample's instruction.

    The result must not depend on ``part`` beyond wording hints: the judge cache keys a judgement by
    (judge identity, instruction, text) so identical texts are judged once across parts and runs.
    Failures return a Judgement with NaN score and ``error`` set, never an exception.
    """

    max_concurrency: int

    def identity(self) -> dict[str, Any]: ...

    async def judge(self, sample: Sample, text: str, part: Part) -> Judgement: ...

    async def aclose(self) -> None: ...

