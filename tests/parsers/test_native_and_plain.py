from __future__ import annotations

from typing import Any

from safemlrm.core.types import Generation, ParseStatus
from safemlrm.parsers.native import parse_native
from safemlrm.parsers.plain import parse_plain


def gen(text: str = "", **fields: Any) -> Generation:
    return Generation(probe_key="p", target="t", text=text, **fields)


def test_native_field_is_the_reasoning() -> None:
    out = parse_native(gen(" No. ", reasoning="I consider the request."))
    assert (out.reasoning, out.answer, out.status) == ("I consider the request.", "No.", ParseStatus.OK)
    assert out.raw == "<think>\nI consider the request.\n</think>\n\n No. "
    assert out.parser == "native"


def test_native_never_searches_the_text_for_tags() -> None:
    out = parse_native(gen("<think>x</think>y"))
    assert (out.reasoning, out.answer, out.status) == ("", "<think>x</think>y", ParseStatus.NO_REASONING)


def test_native_truncated_reasoning_is_missing_answer() -> None:
    out = parse_native(gen("", reasoning="still thinking", finish_reason="length"))
    assert (out.reasoning, out.answer, out.status) == ("still thinking", "", ParseStatus.MISSING_ANSWER)


def test_native_error_and_empty() -> None:
    assert parse_native(gen("", error="429")).status is ParseStatus.ERROR
    assert parse_native(gen("")).status is ParseStatus.EMPTY


def test_plain_never_splits() -> None:
    out = parse_plain(gen("<think>x</think> y "))
    assert (out.reasoning, out.answer, out.status) == ("", "<think>x</think> y", ParseStatus.NO_REASONING)
    assert out.raw == "<think>x</think> y "
    assert out.parser == "plain"


def test_plain_keeps_a_native_field_in_the_answer() -> None:
    out = parse_plain(gen("y", reasoning="x"))
    assert out.answer == "<think>\nx\n</think>\n\ny"
    assert out.status is ParseStatus.NO_REASONING


def test_plain_error_and_empty() -> None:
    assert parse_plain(gen("text", error="boom")).status is ParseStatus.ERROR
    assert parse_plain(gen("\n")).status is ParseStatus.EMPTY
