"""The public API for plugin authors: everything a dataset, attack, target, parser or judge needs.

Import from here, not from the modules behind it; these names stay stable when the package's insides
move. A plugin is a class with a nested pydantic ``Params`` model (extra fields forbidden), built as
``Plugin(params, ctx)``, and registered under a name with its kind's decorator::

    from pydantic import BaseModel, ConfigDict

    from safemlrm.plugin_api import Generation, ParsedOutput, ParseStatus, PluginContext, parsers


    @parsers.register("last_line")
    class LastLineParser:
        \"\"\"The last line is the answer, the rest the reasoning.\"\"\"

        class Params(BaseModel):
            model_config = ConfigDict(extra="forbid")

        def __init__(self, params: Params, ctx: PluginContext) -> None:
            self.name = ctx.label

        def parse(self, generation: Generation) -> ParsedOutput:
            reasoning, _, answer = generation.text.rpartition("\\n")
            return ParsedOutput(raw=generation.text, reasoning=reasoning, answer=answer,
                                status=ParseStatus.OK, parser="last_line")

A third-party package makes its plugins known through the entry-point group of their kind
(``safemlrm.dataset``, ``safemlrm.attack``, ``safemlrm.target``, ``safemlrm.parser``, ``safemlrm.judge``;
``name = "module:Class"``). Each kind's protocol below says what the class must do; failures of models
and judges are values (a Generation with ``error``, a Judgement with a NaN score), never exceptions.
``safemlrm.testing.plugin_context`` makes a context for tests that build a plugin by hand. A judge may
also define ``validation() -> JudgeValidation``: its agreement with human labels (``Agreement`` rows),
shown beside its rates in the reports; without one a judge is reported as "not validated here".

This module is kernel (tests/layers.toml): it imports nothing from the plugin packages.
"""

from __future__ import annotations

from safemlrm.core.batching import MicroBatcher
from safemlrm.core.context import PluginContext, cache_key
from safemlrm.core.hashing import content_hash, file_sha256
from safemlrm.core.language import UNREADABLE_LABEL
from safemlrm.core.plugins import attacks, datasets, judges, parsers, targets
from safemlrm.core.protocols import (
    ALL_MODALITIES,
    Attack,
    Dataset,
    Judge,
    Modality,
    ReasoningParser,
    Target,
    input_modalities,
)
from safemlrm.core.registry import MUST_EXIST, NoParams, PluginConfigError, Registry, must_exist_fields
from safemlrm.core.trust import Agreement, JudgeValidation, not_validated
from safemlrm.core.types import (
    NAN,
    Generation,
    ImagePart,
    ImageRef,
    Judgement,
    Message,
    ParsedOutput,
    ParseStatus,
    Part,
    Probe,
    Sample,
    TextPart,
)

__all__ = [  # registries (decorate a class: @judges.register("name")), protocols, context, records, helpers
    "ALL_MODALITIES",
    "MUST_EXIST",
    "NAN",
    "UNREADABLE_LABEL",
    "Agreement",
    "Attack",
    "Dataset",
    "Generation",
    "ImagePart",
    "ImageRef",
    "Judge",
    "JudgeValidation",
    "Judgement",
    "Message",
    "MicroBatcher",
    "Modality",
    "NoParams",
    "ParseStatus",
    "ParsedOutput",
    "Part",
    "PluginConfigError",
    "PluginContext",
    "Probe",
    "ReasoningParser",
    "Registry",
    "Sample",
    "Target",
    "TextPart",
    "attacks",
    "cache_key",
    "content_hash",
    "datasets",
    "file_sha256",
    "input_modalities",
    "judges",
    "must_exist_fields",
    "not_validated",
    "parsers",
    "targets",
]
