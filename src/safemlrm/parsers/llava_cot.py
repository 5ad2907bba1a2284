"""LLaVA-CoT stages: ``<SUMMARY>..</SUMMARY><CAPTION>..</CAPTION><REASONING>..</REASONING><CONCLUSION>..``.

Reasoning = the summary, caption and reasoning stages joined; answer = the conclusion (the model card
says to keep only the text between the conclusion tags as the answer). Tags are case-insensitive.

- A stage opened but never closed at the end of the output (a truncated generation): what was
  written so far is kept in its part and the status is ``unterminated``.
- A stage left open when the next stage opens counts as closed there (not a truncation).
- Text outside the stages before the conclusion joins the reasoning; after it, the answer. Without a
  conclusion stage, text after the last closed stage is taken as the answer.
- Stages but no conclusion and no trailing text: ``missing_answer``; no stage tags: ``no_reasoning``.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from safemlrm.parsers._common import build, from_native, preflight
from safemlrm.plugin_api import Generation, ParsedOutput, ParseStatus, PluginContext, parsers

NAME = "llava_cot"
REASONING_STAGES = ("summary", "caption", "reasoning")
ANSWER_STAGE = "conclusion"
STAGE_TAG = re.compile(r"<\s*(/?)\s*(summary|caption|reasoning|conclusion)\s*>", re.IGNORECASE)


def parse_llava_cot(generation: Generation, *, parser_name: str = NAME) -> ParsedOutput:
    failed = preflight(generation, parser_name)
    if failed is not None:
        return failed
    native = from_native(generation, parser_name, lambda text: STAGE_TAG.sub("", text).strip())
    if native is not None:
        return native
    text = generation.text
    tags = list(STAGE_TAG.finditer(text))
    if not tags:
        return build(generation, parser_name, "", text)

    reasoning: list[str] = []
    answer: list[str] = []
    outside: list[str] = []  # text outside any stage, not yet assigned
    open_stage: str | None = None
    seen_conclusion = False
    position = 0
    for tag in tags:
        segment = text[position : tag.start()]
        position = tag.end()
        if open_stage == ANSWER_STAGE:
            answer.append(segment)
        elif open_stage is not None:
            reasoning.append(segment)
        elif seen_conclusion:
            answer.append(segment)
        else:
            outside.append(segment)
        closing, stage = tag.group(1) == "/", tag.group(2).lower()
        if closing:
            if stage == open_stage:
                open_stage = None
            continue
        # Text outside stages before a stage opens belongs to the reasoning (a preamble or a gap).
        reasoning.extend(outside)
        outside.clear()
        open_stage = stage
        seen_conclusion = seen_conclusion or stage == ANSWER_STAGE
    tail = text[position:]
    truncated = open_stage is not None
    if open_stage == ANSWER_STAGE or (open_stage is None and seen_conclusion):
        answer.append(tail)
    elif open_stage is not None:
        reasoning.append(tail)
    else:
        answer.extend([*outside, tail])  # no conclusion stage: what follows the stages is the answer

    def join(chunks: list[str]) -> str:
        return "\n\n".join(chunk.strip() for chunk in chunks if chunk.strip())

    status = ParseStatus.UNTERMINATED if truncated else None
    return build(generation, parser_name, join(reasoning), join(answer), status)


@parsers.register(NAME)
class LlavaCotParser:
    """LLaVA-CoT stages: reasoning = SUMMARY, CAPTION and REASONING; answer = CONCLUSION."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params

    def parse(self, generation: Generation) -> ParsedOutput:
        return parse_llava_cot(generation)
