"""Reasoning in think tags: ``<think>reasoning</think>answer`` (the default parser).

Rules (tags case-insensitive, parts trimmed):

- split at the LAST ``</think>``, the SafeMLRM study's rule; everything before it is reasoning (with
  the think tags removed), everything after it is the answer;
- a closing tag alone works too (``reasoning</think>answer``): R1 distills whose chat template already
  holds the opening tag;
- an ``<answer>..</answer>`` wrapping of the answer is stripped (the tags only, never text);
- ``<think>`` without a closing tag: all reasoning, empty answer, status ``unterminated``;
- no tags: all answer, status ``no_reasoning``; reasoning closed with nothing after: ``missing_answer``;
- with ``cut_untagged_is_reasoning``: no tags and cut by the token limit (``finish_reason`` length):
  all reasoning, status ``unterminated`` -- for hybrid models whose template opens ``<think>`` in the
  prompt only with thinking on (MiniCPM-V 4.5), so a cut trace holds no tag at all;
- a native reasoning field from the API (``Generation.reasoning``) is the reasoning, the text the answer.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from safemlrm.parsers._common import (
    TAG_NAME,
    build,
    from_native,
    last_match,
    preflight,
    remove_tags,
    tag_patterns,
    truncated,
)
from safemlrm.plugin_api import Generation, ParsedOutput, ParseStatus, PluginContext, parsers

NAME = "think_tags"


def parse_think_tags(
    generation: Generation,
    *,
    tag: str = "think",
    answer_tag: str = "answer",
    cut_untagged_is_reasoning: bool = False,
    parser_name: str = NAME,
) -> ParsedOutput:
    """Split a generation at its last closing think tag (see the module docstring for every rule)."""
    failed = preflight(generation, parser_name)
    if failed is not None:
        return failed
    think_open, think_close = tag_patterns(tag)
    answer_open, answer_close = tag_patterns(answer_tag)

    def clean_answer(text: str) -> str:
        return remove_tags(text, answer_open, answer_close)

    native = from_native(generation, parser_name, clean_answer)
    if native is not None:
        return native
    text = generation.text
    close = last_match(think_close, text)
    if close is not None:
        reasoning = remove_tags(text[: close.start()], think_open, think_close)
        return build(generation, parser_name, reasoning, clean_answer(text[close.end() :]))
    if think_open.search(text):
        reasoning = remove_tags(text, think_open)
        return build(generation, parser_name, reasoning, "", ParseStatus.UNTERMINATED)
    if cut_untagged_is_reasoning and truncated(generation):
        return build(generation, parser_name, text, "", ParseStatus.UNTERMINATED)
    return build(generation, parser_name, "", clean_answer(text))


@parsers.register(NAME)
class ThinkTagsParser:
    """``<think>reasoning</think>answer``, split at the last closing tag (R1-style models; the default)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        tag: str = Field(default="think", pattern=TAG_NAME, description="name of the reasoning tag")
        answer_tag: str = Field(
            default="answer", pattern=TAG_NAME, description="name of an optional tag wrapping the answer"
        )
        cut_untagged_is_reasoning: bool = Field(
            default=False,
            description=(
                "an output with no tag that the token limit cut is unfinished reasoning (unterminated), "
                "for hybrid templates that open the reasoning in the prompt only with thinking on"
            ),
        )

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params

    def parse(self, generation: Generation) -> ParsedOutput:
        return parse_think_tags(
            generation,
            tag=self.params.tag,
            answer_tag=self.params.answer_tag,
            cut_untagged_is_reasoning=self.params.cut_untagged_is_reasoning,
        )
