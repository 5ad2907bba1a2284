"""Reasoning opened by the chat template: the prompt ends in ``<think>``, the output holds only ``</think>``.

Thinking-only chat templates (the Qwen3 ``-Thinking`` models, QwQ) end the generation prompt with
``<think>\\n``, so the model's own text starts inside the reasoning: ``reasoning</think>answer``. The
difference from ``think_tags`` is the output without any tag: here it is reasoning the model never
closed (usually cut by the token limit), status ``unterminated``, where ``think_tags`` would call it
an answer. Rules (see ``split_at_close``): split at the last ``</think>``; an ``<answer>`` wrapping
of the answer is stripped (tags only); a native reasoning field wins over the text, and reasoning
that the token limit cut before any answer is ``unterminated``.

Do not use it for a hybrid model with thinking switched off: its template closes the reasoning in
the prompt and the whole output is the answer (use ``think_tags`` there).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from safemlrm.parsers._common import remove_tags, split_at_close, tag_patterns
from safemlrm.plugin_api import Generation, ParsedOutput, PluginContext, parsers

NAME = "think_prefilled"
THINK_OPEN, THINK_CLOSE = tag_patterns("think")
ANSWER_OPEN, ANSWER_CLOSE = tag_patterns("answer")


def _clean_answer(text: str) -> str:
    return remove_tags(text, ANSWER_OPEN, ANSWER_CLOSE)


def parse_think_prefilled(generation: Generation, *, parser_name: str = NAME) -> ParsedOutput:
    return split_at_close(
        generation, parser_name, THINK_OPEN, THINK_CLOSE, opened_in_prompt=True, clean_answer=_clean_answer
    )


@parsers.register(NAME)
class ThinkPrefilledParser:
    """``reasoning</think>answer`` after a template that opened ``<think>``; no tag = unfinished reasoning."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params

    def parse(self, generation: Generation) -> ParsedOutput:
        return parse_think_prefilled(generation)
