from __future__ import annotations

from typing import Any

import pytest

from safemlrm.core.types import Generation, ParseStatus
from safemlrm.parsers.llava_cot import parse_llava_cot

FULL = (
    "<SUMMARY> I will describe the image and answer. </SUMMARY>\n\n"
    "<CAPTION> A bottle on a table. </CAPTION>\n\n"
    "<REASONING> The request is harmful. </REASONING>\n\n"
    "<CONCLUSION> I can't help with that. </CONCLUSION>"
)


def gen(text: str = "", **fields: Any) -> Generation:
    return Generation(probe_key="p", target="t", text=text, **fields)


def test_four_stages() -> None:
    out = parse_llava_cot(gen(FULL))
    assert out.reasoning == (
        "I will describe the image and answer.\n\nA bottle on a table.\n\nThe request is harmful."
    )
    assert out.answer == "I can't help with that."
    assert out.status is ParseStatus.OK
    assert out.raw == FULL
    assert out.parser == "llava_cot"


@pytest.mark.parametrize(
    ("cut_at", "status", "answer"),
    [
        ("<CAPTION> A bottle", ParseStatus.UNTERMINATED, ""),
        ("<REASONING> The request", ParseStatus.UNTERMINATED, ""),
        ("<CONCLUSION> I can't", ParseStatus.UNTERMINATED, "I can't"),
    ],
)
def test_truncated_outputs_are_unterminated(cut_at: str, status: ParseStatus, answer: str) -> None:
    text = FULL[: FULL.index(cut_at) + len(cut_at)]
    out = parse_llava_cot(gen(text, finish_reason="length"))
    assert (out.status, out.answer) == (status, answer)
    assert out.reasoning.startswith("I will describe")


def test_cut_between_stages_is_missing_answer() -> None:
    text = FULL[: FULL.index("<CONCLUSION>")]
    out = parse_llava_cot(gen(text))
    assert out.status is ParseStatus.MISSING_ANSWER
    assert out.reasoning.endswith("The request is harmful.")


def test_text_after_stages_without_conclusion_is_the_answer() -> None:
    out = parse_llava_cot(gen("<SUMMARY>s</SUMMARY><REASONING>r</REASONING>\nThe answer is B."))
    assert (out.reasoning, out.answer, out.status) == ("s\n\nr", "The answer is B.", ParseStatus.OK)


def test_a_stage_left_open_closes_at_the_next_stage() -> None:
    out = parse_llava_cot(gen("<summary>s<caption>c</caption><conclusion>a</conclusion>"))
    assert (out.reasoning, out.answer, out.status) == ("s\n\nc", "a", ParseStatus.OK)


def test_preamble_joins_reasoning_and_trailer_joins_answer() -> None:
    out = parse_llava_cot(gen("Preamble. <SUMMARY>s</SUMMARY> gap <CONCLUSION>a</CONCLUSION> trailer"))
    assert out.reasoning == "Preamble.\n\ns\n\ngap"
    assert out.answer == "a\n\ntrailer"


def test_conclusion_only_and_no_tags() -> None:
    out = parse_llava_cot(gen("<CONCLUSION>a</CONCLUSION>"))
    assert (out.reasoning, out.answer, out.status) == ("", "a", ParseStatus.NO_REASONING)
    out = parse_llava_cot(gen("I can't help."))
    assert (out.reasoning, out.answer, out.status) == ("", "I can't help.", ParseStatus.NO_REASONING)


def test_error_empty_native() -> None:
    assert parse_llava_cot(gen("<SUMMARY>", error="x")).status is ParseStatus.ERROR
    assert parse_llava_cot(gen("")).status is ParseStatus.EMPTY
    out = parse_llava_cot(gen("<CONCLUSION>a</CONCLUSION>", reasoning="r"))
    assert (out.reasoning, out.answer, out.status) == ("r", "a", ParseStatus.OK)
