"""What the reasoning parsers share: tag patterns, the raw text, and failed, empty or native outputs.

Model outputs are hostile text: every pattern here is linear (no nested quantifiers), and nothing
is evaluated or rendered.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from safemlrm.types import Generation, ParsedOutput, ParseStatus

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
