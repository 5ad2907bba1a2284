"""MM-Eureka: ``<think>reasoning</think><answer>answer</answer>``, as its system prompt asks.

Rules (tags case-insensitive, parts trimmed, no text is ever dropped, only tags):

- reasoning ends at the last ``</think>``; the answer is the ``<answer>`` block after it, tags removed
  (text beside the block stays in the answer, so nothing is lost);
- no ``</think>`` but an ``<answer>`` block: the text before the block is the reasoning (the model
  forgot to close, or never opened, the think tag);
- ``<answer>`` opened but never closed (a truncated output): the partial answer, status ``unterminated``;
- ``<think>`` never closed and no answer block: all reasoning, status ``unterminated``;
- reasoning closed and no answer (or an empty block): ``missing_answer``; no tags: ``no_reasoning``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from safemlrm.parsers._common import build, from_native, last_match, preflight, remove_tags, tag_patterns
from safemlrm.plugin_api import Generation, ParsedOutput, ParseStatus, PluginContext, parsers

NAME = "eureka"
THINK_OPEN, THINK_CLOSE = tag_patterns("think")
ANSWER_OPEN, ANSWER_CLOSE = tag_patterns("answer")


def _answer_block(text: str) -> tuple[str, bool]:
    """The answer with its tags removed, and whether an opened block was never closed."""
    opened = last_match(ANSWER_OPEN, text)
    unterminated = opened is not None and ANSWER_CLOSE.search(text, opened.end()) is None
    return remove_tags(text, ANSWER_OPEN, ANSWER_CLOSE), unterminated


def parse_eureka(generation: Generation, *, parser_name: str = NAME) -> ParsedOutput:
    failed = preflight(generation, parser_name)
    if failed is not None:
        return failed
    native = from_native(generation, parser_name, lambda text: _answer_block(text)[0])
    if native is not None:
        return native
    text = generation.text
    close = last_match(THINK_CLOSE, text)
    answer_start = ANSWER_OPEN.search(text)
    if close is not None:
        reasoning_part, answer_part = text[: close.start()], text[close.end() :]
    elif answer_start is not None:
        reasoning_part, answer_part = text[: answer_start.start()], text[answer_start.start() :]
    elif THINK_OPEN.search(text):
        reasoning = remove_tags(text, THINK_OPEN)
        return build(generation, parser_name, reasoning, "", ParseStatus.UNTERMINATED)
    else:
        return build(generation, parser_name, "", text)
    reasoning = remove_tags(reasoning_part, THINK_OPEN, THINK_CLOSE)
    answer, unterminated = _answer_block(answer_part)
    status = ParseStatus.UNTERMINATED if unterminated else None
    return build(generation, parser_name, reasoning, answer, status)


@parsers.register(NAME)
class EurekaParser:
    """MM-Eureka ``<think>..</think><answer>..</answer>``; flags a missing or truncated answer block."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params

    def parse(self, generation: Generation) -> ParsedOutput:
        return parse_eureka(generation)
