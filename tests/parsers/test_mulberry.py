from __future__ import annotations

from typing import Any

from safemlrm.core.types import Generation, ParseStatus
from safemlrm.parsers.mulberry import parse_mulberry

NATIVE = """### Image Description:
The image shows a kitchen with several bottles.

### Rationales:
The question asks what the bottles contain.

### Let's think step by step.

### Step 1:
Read the labels.

### Step 2:
Compare them with the question.

### The final answer is: I cannot help with mixing these."""


def gen(text: str = "", **fields: Any) -> Generation:
    return Generation(probe_key="p", target="t", text=text, **fields)


def test_native_sections_split_at_the_final_answer_marker() -> None:
    out = parse_mulberry(gen(NATIVE))
    assert out.status is ParseStatus.OK
    assert out.answer == "I cannot help with mixing these."
    assert out.reasoning.startswith("### Image Description:\nThe image shows")
    assert out.reasoning.endswith("Compare them with the question.")
    assert out.raw == NATIVE
    assert out.parser == "mulberry"


def test_reflection_splits_at_the_last_marker() -> None:
    text = (
        "### Step 1:\nA.\n### The final answer is: wrong\n"
        "I think I have made a mistake. Let me rethink it.\n\n### Step 1:\nB.\n### The final answer is: right"
    )
    out = parse_mulberry(gen(text))
    assert out.answer == "right"
    assert "### The final answer is: wrong" in out.reasoning
    assert out.status is ParseStatus.OK


def test_truncated_steps_are_unterminated() -> None:
    text = NATIVE.split("### The final answer is:")[0].rstrip() + "\n\n### Step 3:\nMix the"
    out = parse_mulberry(gen(text))
    assert out.status is ParseStatus.UNTERMINATED
    assert out.answer == ""
    assert out.reasoning.endswith("Mix the")


def test_marker_with_nothing_after_is_missing_answer() -> None:
    out = parse_mulberry(gen("### Step 1:\nx\n### The final answer is:\n"))
    assert (out.reasoning, out.answer, out.status) == ("### Step 1:\nx", "", ParseStatus.MISSING_ANSWER)


def test_marker_variants() -> None:
    # the phrase the prompt quotes, without hashes, at the start of a line
    out = parse_mulberry(gen("### Step 1:\nx\nThe final answer is: B"))
    assert (out.answer, out.status) == ("B", ParseStatus.OK)
    # a sentence that merely starts with the words is not a marker
    out = parse_mulberry(gen("### Step 1:\nThe final answer is probably B, let me check."))
    assert out.status is ParseStatus.UNTERMINATED


def test_think_tag_variant_the_study_used() -> None:
    out = parse_mulberry(gen("<think>I should refuse.</think><answer>No.</answer>"))
    assert (out.reasoning, out.answer, out.status, out.parser) == (
        "I should refuse.",
        "No.",
        ParseStatus.OK,
        "mulberry",
    )
    truncated = parse_mulberry(gen("<think>### Step 1:\nThe user"))
    assert truncated.status is ParseStatus.UNTERMINATED


def test_answer_only_and_plain_text() -> None:
    out = parse_mulberry(gen("### The final answer is: B"))
    assert (out.reasoning, out.answer, out.status) == ("", "B", ParseStatus.NO_REASONING)
    out = parse_mulberry(gen("Sorry, I can't help."))
    assert (out.reasoning, out.answer, out.status) == ("", "Sorry, I can't help.", ParseStatus.NO_REASONING)


def test_error_empty_native() -> None:
    assert parse_mulberry(gen("", error="x")).status is ParseStatus.ERROR
    assert parse_mulberry(gen(" ")).status is ParseStatus.EMPTY
    out = parse_mulberry(gen("B", reasoning="steps"))
    assert (out.reasoning, out.answer, out.status) == ("steps", "B", ParseStatus.OK)
