from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.registry import PluginConfigError
from safemlrm.core.types import Generation, ParseStatus
from safemlrm.parsers.think_tags import parse_think_tags


def gen(text: str = "", **fields: Any) -> Generation:
    return Generation(probe_key="p", target="t", text=text, **fields)


@pytest.mark.parametrize(
    ("text", "reasoning", "answer", "status"),
    [
        ("<think>I weigh it.</think>I cannot help.", "I weigh it.", "I cannot help.", ParseStatus.OK),
        # R1 distills: the chat template holds the opening tag, the output only closes it
        ("I weigh it.\n</think>\n\nI cannot help.", "I weigh it.", "I cannot help.", ParseStatus.OK),
        ("<think>r</think><answer>the answer</answer>", "r", "the answer", ParseStatus.OK),
        ("<think>r</think>Final: <answer>x</answer>", "r", "Final: x", ParseStatus.OK),
        ("<THINK> r </Think>\n  a  ", "r", "a", ParseStatus.OK),
        ("< think >r< / think >a", "r", "a", ParseStatus.OK),
        # the study's rule: split at the LAST closing tag, so a second block stays reasoning
        ("<think>a</think>b<think>c</think>d", "abc", "d", ParseStatus.OK),
        # truncated: opened, never closed
        ("<think>Step 1: I consider", "Step 1: I consider", "", ParseStatus.UNTERMINATED),
        ("Sure. <think>half a thought", "Sure. half a thought", "", ParseStatus.UNTERMINATED),
        ("No tags at all.", "", "No tags at all.", ParseStatus.NO_REASONING),
        ("<answer>only an answer</answer>", "", "only an answer", ParseStatus.NO_REASONING),
        ("<think></think>answer", "", "answer", ParseStatus.NO_REASONING),
        ("<think>reasoning only</think>\n\n", "reasoning only", "", ParseStatus.MISSING_ANSWER),
        ("<think>r</think><answer> </answer>", "r", "", ParseStatus.MISSING_ANSWER),
        ("", "", "", ParseStatus.EMPTY),
        ("  \n ", "", "", ParseStatus.EMPTY),
    ],
)
def test_think_tag_formats(text: str, reasoning: str, answer: str, status: ParseStatus) -> None:
    out = parse_think_tags(gen(text))
    assert (out.reasoning, out.answer, out.status) == (reasoning, answer, status)
    assert out.raw == text
    assert out.parser == "think_tags"


def test_error_keeps_raw_and_flags_error() -> None:
    out = parse_think_tags(gen("<think>partial", error="timeout"))
    assert out.status is ParseStatus.ERROR
    assert out.raw == "<think>partial"
    assert out.reasoning == out.answer == ""


def test_native_reasoning_field_is_the_reasoning() -> None:
    out = parse_think_tags(gen("<answer>No.</answer>", reasoning="The user wants harm."))
    assert (out.reasoning, out.answer, out.status) == ("The user wants harm.", "No.", ParseStatus.OK)
    # the whole output holds both, reasoning first, in think tags
    assert out.raw == "<think>\nThe user wants harm.\n</think>\n\n<answer>No.</answer>"


def test_native_reasoning_without_content_is_missing_answer() -> None:
    out = parse_think_tags(gen("", reasoning="thinking...", finish_reason="length"))
    assert (out.reasoning, out.answer, out.status) == ("thinking...", "", ParseStatus.MISSING_ANSWER)
    assert "thinking..." in out.raw


def test_blank_native_reasoning_is_ignored() -> None:
    out = parse_think_tags(gen("<think>r</think>a", reasoning="  "))
    assert (out.reasoning, out.answer, out.raw) == ("r", "a", "<think>r</think>a")


def test_custom_tag_names_through_the_registry() -> None:
    parser = plugins.parsers.create("think_tags", {"tag": "reasoning"}, PluginContext())
    out = parser.parse(gen("<reasoning>r</reasoning>a"))
    assert (out.reasoning, out.answer, out.status) == ("r", "a", ParseStatus.OK)
    # think tags are plain text for this parser
    assert parser.parse(gen("<think>x</think>y")).status is ParseStatus.NO_REASONING


def test_tag_names_are_validated() -> None:
    with pytest.raises(PluginConfigError, match="tag"):
        plugins.parsers.create("think_tags", {"tag": "a>b"}, PluginContext())


@pytest.mark.needs_shared
def test_every_star1_r1_trace_splits_ok(shared_data: Path) -> None:
    records = json.loads((shared_data / "reasoning_traces" / "star1_r1_traces_dev.json").read_text("utf-8"))
    assert len(records) == 300
    for record in records:
        out = parse_think_tags(gen(record["response"]))
        assert out.status is ParseStatus.OK, record["id"]
        assert out.reasoning and out.answer, record["id"]
        assert "</think>" not in out.answer, record["id"]
        assert out.raw == record["response"]


# ------------------------------------------------------------------ property: nothing is lost

TAGS = re.compile(r"</?(?:think|answer)>", re.IGNORECASE)


def normalise(text: str) -> str:
    """Whitespace dropped and think/answer tags removed until none is left."""
    text = re.sub(r"\s+", "", text)
    while True:
        reduced = TAGS.sub("", text)
        if reduced == text:
            return text
        text = reduced


PIECES = [
    "<think>",
    "</think>",
    "<THINK>",
    "</Think>",
    "< think >",
    "<answer>",
    "</answer>",
    "<",
    ">",
    "/",
    "think",
    "answer",
    " ",
    "\n",
    "a",
    "b",
    "ok",
]
texts = st.one_of(st.text(), st.lists(st.sampled_from(PIECES), max_size=30).map("".join))


@given(texts)
def test_think_tags_keeps_raw_and_every_non_tag_character(text: str) -> None:
    out = parse_think_tags(gen(text))
    assert out.raw == text
    assert normalise(out.reasoning + out.answer) == normalise(text)


@given(texts, st.text(min_size=1).filter(str.strip))
def test_native_reasoning_is_kept_whole(text: str, reasoning: str) -> None:
    out = parse_think_tags(gen(text, reasoning=reasoning))
    assert out.reasoning == reasoning.strip()
    assert reasoning in out.raw and out.raw.endswith(text)
    assert normalise(out.answer) == normalise(text)
