"""What the reasoning parsers share: tag patterns, the raw text, and failed, empty or native outputs.

Model outputs are hostile text: every pattern here is linear (no nested quantifiers), and nothing
is evaluated or rendered.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from safemlrm.plugin_api import Generation, ParsedOutput, ParseStatus

TAG_NAME = r"^[A-Za-z][A-Za-z0-9_\-]*$"


def tag_patterns(name: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Case-insensitive patterns for ``<name>`` and ``</name>`` (whitespace inside the brackets allowed)."""
    escaped = re.escape(name)
    return (
        re.compile(rf"<\s*{escaped}\s*>", re.IGNORECASE),
        re.compile(rf"<\s*/\s*{escaped}\s*>", re.IGNORECASE),
    )


def remove_tags(text: str, *patterns: re.Pattern[str]) -> str:
    for pattern in patterns:
        text = pattern.sub("", text)
    return text


def last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    last = None
    for last in pattern.finditer(text):  # noqa: B007 - we want the final match
        pass
    return last


def native_reasoning(generation: Generation) -> str | None:
    """The API's native reasoning field, when it holds any text."""
    if generation.reasoning is not None and generation.reasoning.strip():
        return generation.reasoning
    return None


def raw_text(generation: Generation) -> str:
    """The full output: with a native reasoning field, the reasoning in think tags, then the content.

    So the "whole" part scores what the model produced, reasoning included, whatever the server
    separated.
    """
    reasoning = native_reasoning(generation)
    if reasoning is None:
        return generation.text
    return f"<think>\n{reasoning}\n</think>\n\n{generation.text}"


def status_of(reasoning: str, answer: str) -> ParseStatus:
    if reasoning and answer:
        return ParseStatus.OK
    if reasoning:
        return ParseStatus.MISSING_ANSWER
    if answer:
        return ParseStatus.NO_REASONING
    return ParseStatus.EMPTY


def build(
    generation: Generation, parser: str, reasoning: str, answer: str, status: ParseStatus | None = None
) -> ParsedOutput:
    """A ParsedOutput with trimmed parts; the status follows from which parts are empty unless given."""
    reasoning, answer = reasoning.strip(), answer.strip()
    return ParsedOutput(
        raw=raw_text(generation),
        reasoning=reasoning,
        answer=answer,
        status=status if status is not None else status_of(reasoning, answer),
        parser=parser,
    )


def preflight(generation: Generation, parser: str) -> ParsedOutput | None:
    """The output for a failed or empty generation, or None when there is something to parse."""
    if generation.error is not None:
        return ParsedOutput(
            raw=raw_text(generation), reasoning="", answer="", status=ParseStatus.ERROR, parser=parser
        )
    if not generation.text.strip() and native_reasoning(generation) is None:
        return ParsedOutput(
            raw=generation.text, reasoning="", answer="", status=ParseStatus.EMPTY, parser=parser
        )
    return None


def from_native(
    generation: Generation, parser: str, clean_answer: Callable[[str], str] = str.strip
) -> ParsedOutput | None:
    """Reasoning from the API's native field and the content as the answer; None without that field."""
    reasoning = native_reasoning(generation)
    if reasoning is None:
        return None
    return build(generation, parser, reasoning, clean_answer(generation.text))


def truncated(generation: Generation) -> bool:
    """Whether the server stopped the generation at its token limit (``finish_reason == "length"``)."""
    return generation.finish_reason == "length"


def mark_truncation(parsed: ParsedOutput, generation: Generation) -> ParsedOutput:
    """Reasoning cut by the token limit before any answer is ``unterminated``, not ``missing_answer``.

    A cut trace is neither safe nor unsafe by itself, so reports count it apart. Servers that split
    the reasoning themselves return such a trace in the native field with no content; this is how
    the delimiter parsers tell it from a model that closed its reasoning and then said nothing.
    """
    if parsed.status is ParseStatus.MISSING_ANSWER and truncated(generation):
        return parsed.model_copy(update={"status": ParseStatus.UNTERMINATED})
    return parsed


def split_at_close(
    generation: Generation,
    parser_name: str,
    open_tag: re.Pattern[str],
    close_tag: re.Pattern[str],
    *,
    opened_in_prompt: bool = False,
    clean_answer: Callable[[str], str] = str.strip,
) -> ParsedOutput:
    """The shared rule of the delimiter parsers (``kimi``, ``think_prefilled``).

    - a native reasoning field is the reasoning and the text the answer;
    - otherwise split at the LAST closing marker: before it is reasoning (markers removed), after it
      the answer (``clean_answer`` applied);
    - no closing marker but an opening one, or none at all when the chat template opened the
      reasoning in the prompt (``opened_in_prompt``): all reasoning, status ``unterminated``;
    - no markers and nothing opened in the prompt: all answer, status ``no_reasoning``;
    - reasoning with no answer because the token limit cut it: ``unterminated``.
    """
    failed = preflight(generation, parser_name)
    if failed is not None:
        return failed
    native = from_native(generation, parser_name, clean_answer)
    if native is not None:
        return mark_truncation(native, generation)
    text = generation.text
    close = last_match(close_tag, text)
    if close is not None:
        reasoning = remove_tags(text[: close.start()], open_tag, close_tag)
        parsed = build(generation, parser_name, reasoning, clean_answer(text[close.end() :]))
        return mark_truncation(parsed, generation)
    if opened_in_prompt or open_tag.search(text):
        return build(generation, parser_name, remove_tags(text, open_tag), "", ParseStatus.UNTERMINATED)
    return build(generation, parser_name, "", clean_answer(text))
