from __future__ import annotations

from typing import Any

import pytest

from safemlrm.core.types import Generation, ParseStatus
from safemlrm.parsers.eureka import parse_eureka


def gen(text: str = "", **fields: Any) -> Generation:
    return Generation(probe_key="p", target="t", text=text, **fields)


@pytest.mark.parametrize(
    ("text", "reasoning", "answer", "status"),
    [
        (
            "<think> The image shows a lock. </think> <answer> I can't help. </answer>",
            "The image shows a lock.",
            "I can't help.",
            ParseStatus.OK,
        ),
        ("<think>r</think>\n<answer>a</answer>\n", "r", "a", ParseStatus.OK),
        # answer block truncated by the token limit: partial answer kept, flagged
        ("<think>r</think><answer>Step one is to", "r", "Step one is to", ParseStatus.UNTERMINATED),
        # reasoning truncated: never closed, no answer block
        ("<think>The user asks about", "The user asks about", "", ParseStatus.UNTERMINATED),
        # think closed, no answer block: the trailing text is the answer (the format slipped)
        ("<think>r</think>Plain answer.", "r", "Plain answer.", ParseStatus.OK),
        # think never closed but an answer block follows: the text before the block is reasoning
        ("<think>r<answer>a</answer>", "r", "a", ParseStatus.OK),
        ("untagged thoughts <answer>a</answer>", "untagged thoughts", "a", ParseStatus.OK),
        ("<answer>a</answer>", "", "a", ParseStatus.NO_REASONING),
        ("<think>r</think>", "r", "", ParseStatus.MISSING_ANSWER),
        ("<think>r</think><answer></answer>", "r", "", ParseStatus.MISSING_ANSWER),
        ("No format at all.", "", "No format at all.", ParseStatus.NO_REASONING),
        ("", "", "", ParseStatus.EMPTY),
        # split at the last closing think tag, as for think_tags
        ("<think>a</think>b<think>c</think><answer>d</answer>", "abc", "d", ParseStatus.OK),
    ],
)
def test_eureka_formats(text: str, reasoning: str, answer: str, status: ParseStatus) -> None:
    out = parse_eureka(gen(text))
    assert (out.reasoning, out.answer, out.status) == (reasoning, answer, status)
    assert out.raw == text
    assert out.parser == "eureka"


def test_a_closed_block_after_an_unclosed_one_is_not_truncation() -> None:
    out = parse_eureka(gen("<think>r</think><answer>draft <answer>final</answer>"))
    assert out.status is ParseStatus.OK
    assert out.answer == "draft final"


def test_error_and_native_field() -> None:
    assert parse_eureka(gen("x", error="boom")).status is ParseStatus.ERROR
    out = parse_eureka(gen("<answer>No.</answer>", reasoning="native thoughts"))
    assert (out.reasoning, out.answer, out.status) == ("native thoughts", "No.", ParseStatus.OK)
