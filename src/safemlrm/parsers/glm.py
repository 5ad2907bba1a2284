"""GLM-V thinking models: ``<think>reasoning</think><answer>answer</answer>``, boxes marked in the answer.

GLM-4.1V-9B-Thinking answers ``<think>..</think><answer>..</answer>`` and marks the final result (or
an image bounding box) with the special tokens ``<|begin_of_box|>..<|end_of_box|>`` inside the answer
(zai-org/GLM-V README and its ``inference/trans_infer_*.py`` scripts, which read the answer from the
``<answer>`` block). GLM-4.5V drops the ``<answer>`` tags (same README); with thinking switched off
there is no reasoning at all. This parser reads all of these:

- the ``eureka`` rules for the think and answer tags (split at the last ``</think>``; an answer block
  opened but never closed, or a ``<think>`` never closed, is ``unterminated``);
- the box tokens are removed from the answer, their content kept;
- reasoning cut by the token limit before any answer is ``unterminated``.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from safemlrm.parsers._common import mark_truncation, remove_tags, status_of
from safemlrm.parsers.eureka import parse_eureka
from safemlrm.plugin_api import Generation, ParsedOutput, ParseStatus, PluginContext, parsers

NAME = "glm"
BOX_OPEN = re.compile(r"<\|begin_of_box\|>")
BOX_CLOSE = re.compile(r"<\|end_of_box\|>")


def parse_glm(generation: Generation, *, parser_name: str = NAME) -> ParsedOutput:
    parsed = parse_eureka(generation, parser_name=parser_name)
    if parsed.status in (ParseStatus.ERROR, ParseStatus.EMPTY):
        return parsed
    answer = remove_tags(parsed.answer, BOX_OPEN, BOX_CLOSE).strip()
    reasoning = remove_tags(parsed.reasoning, BOX_OPEN, BOX_CLOSE).strip()
    status: ParseStatus = parsed.status
    if status is not ParseStatus.UNTERMINATED:
        status = status_of(reasoning, answer)
    return mark_truncation(
        parsed.model_copy(update={"reasoning": reasoning, "answer": answer, "status": status}), generation
    )


@parsers.register(NAME)
class GlmParser:
    """GLM-V ``<think>..</think><answer>..</answer>`` with ``<|begin_of_box|>`` marks removed from the answer."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params

    def parse(self, generation: Generation) -> ParsedOutput:
        return parse_glm(generation)
