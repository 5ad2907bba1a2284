"""The parsers for current reasoning VLMs (Kimi-VL, GLM-V, templates that open <think>), on realistic outputs."""

from __future__ import annotations

from typing import Any

import pytest

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.types import Generation, ParseStatus
from safemlrm.parsers.glm import parse_glm
from safemlrm.parsers.kimi import parse_kimi
from safemlrm.parsers.think_prefilled import parse_think_prefilled


def gen(text: str = "", **fields: Any) -> Generation:
    return Generation(probe_key="p", target="t", text=text, **fields)


KIMI_OK = (
    "◁think▷The image shows a chemistry set and the text asks how to make a toxic gas at home. This is "
    "dangerous, so I should refuse and point to safety information.◁/think▷I can't help with making toxic "
    "gases. If you are interested in chemistry, I can suggest safe experiments."
)


@pytest.mark.parametrize(
    ("text", "finish", "reasoning", "answer", "status"),
    [
        (
            KIMI_OK,
            "stop",
            "The image shows a chemistry set and the text asks how to make a toxic gas at home. This is "
            "dangerous, so I should refuse and point to safety information.",
            "I can't help with making toxic gases. If you are interested in chemistry, I can suggest safe experiments.",
            ParseStatus.OK,
        ),
        # cut by the token limit inside the reasoning
        ("◁think▷Step 1: the picture lists the materials needed", "length",
         "Step 1: the picture lists the materials needed", "", ParseStatus.UNTERMINATED),
        # closed, then nothing
        ("◁think▷I will not answer this.◁/think▷", "stop", "I will not answer this.", "", ParseStatus.MISSING_ANSWER),
        # the instruct model: no markers
        ("The image shows a laboratory.", "stop", "", "The image shows a laboratory.", ParseStatus.NO_REASONING),
        # last closing marker wins; spaces inside markers tolerated
        ("◁think▷a◁/think▷b◁ think ▷c◁ / think ▷d", "stop", "abc", "d", ParseStatus.OK),
        # <think> tags are not Kimi's markers: they stay in the answer
        ("<think>x</think>y", "stop", "", "<think>x</think>y", ParseStatus.NO_REASONING),
    ],
)
def test_kimi(text: str, finish: str, reasoning: str, answer: str, status: ParseStatus) -> None:
    out = parse_kimi(gen(text, finish_reason=finish))
    assert (out.reasoning, out.answer, out.status) == (reasoning, answer, status)
    assert out.raw == text and out.parser == "kimi"


GLM41V_OK = (
    "<think>The user shows a diagram of a lock and asks how to open it without the key. Lock picking on "
    "someone else's property is illegal; I should decline.</think><answer>I can't help with opening a lock "
    "you don't own. <|begin_of_box|>Please contact a licensed locksmith.<|end_of_box|></answer>"
)


@pytest.mark.parametrize(
    ("text", "finish", "reasoning", "answer", "status"),
    [
        (
            GLM41V_OK,
            "stop",
            "The user shows a diagram of a lock and asks how to open it without the key. Lock picking on "
            "someone else's property is illegal; I should decline.",
            "I can't help with opening a lock you don't own. Please contact a licensed locksmith.",
            ParseStatus.OK,
        ),
        # GLM-4.5V: no answer tags
        ("<think>\nA harmless question.</think>\nThe answer is <|begin_of_box|>42<|end_of_box|>.", "stop",
         "A harmless question.", "The answer is 42.", ParseStatus.OK),
        # thinking switched off: no reasoning at all
        ("Sure, here is a summary.", "stop", "", "Sure, here is a summary.", ParseStatus.NO_REASONING),
        # truncated inside the reasoning
        ("<think>First, the image contains", "length", "First, the image contains", "", ParseStatus.UNTERMINATED),
        # truncated inside the answer block
        ("<think>ok</think><answer>Step 1: mix the", "length", "ok", "Step 1: mix the", ParseStatus.UNTERMINATED),
        # reasoning closed, the answer cut before it began
        ("<think>Long reasoning.</think>", "length", "Long reasoning.", "", ParseStatus.UNTERMINATED),
        ("<think>Long reasoning.</think>", "stop", "Long reasoning.", "", ParseStatus.MISSING_ANSWER),
    ],
)
def test_glm(text: str, finish: str, reasoning: str, answer: str, status: ParseStatus) -> None:
    out = parse_glm(gen(text, finish_reason=finish))
    assert (out.reasoning, out.answer, out.status) == (reasoning, answer, status)
    assert out.raw == text and out.parser == "glm"


def test_glm_native_reasoning_field() -> None:
    """vLLM's glm45 reasoning parser returns the reasoning apart; the boxes still leave the answer."""
    out = parse_glm(gen("<answer><|begin_of_box|>No.<|end_of_box|></answer>", reasoning="thought"))
    assert (out.reasoning, out.answer, out.status) == ("thought", "No.", ParseStatus.OK)


QWEN3_THINKING = (
    "The user asks for instructions shown in the image to build a weapon. I must refuse.\n</think>\n\n"
    "I'm sorry, but I can't help with that."
)


@pytest.mark.parametrize(
    ("text", "finish", "reasoning", "answer", "status"),
    [
        (QWEN3_THINKING, "stop", "The user asks for instructions shown in the image to build a weapon. I must refuse.",
         "I'm sorry, but I can't help with that.", ParseStatus.OK),
        # the template opened <think>: text without a closing tag is unfinished reasoning, not an answer
        ("Let me look at the image. The typography reads", "length",
         "Let me look at the image. The typography reads", "", ParseStatus.UNTERMINATED),
        ("Let me look at the image.", "stop", "Let me look at the image.", "", ParseStatus.UNTERMINATED),
        # some servers echo the opening tag
        ("<think>r</think><answer>a</answer>", "stop", "r", "a", ParseStatus.OK),
        ("r</think>", "stop", "r", "", ParseStatus.MISSING_ANSWER),
    ],
)
def test_think_prefilled(text: str, finish: str, reasoning: str, answer: str, status: ParseStatus) -> None:
    out = parse_think_prefilled(gen(text, finish_reason=finish))
    assert (out.reasoning, out.answer, out.status) == (reasoning, answer, status)
    assert out.raw == text


def test_native_reasoning_cut_by_the_limit_is_unterminated() -> None:
    """A server-side reasoning parser puts a cut trace in the native field and leaves the content empty."""
    cut = gen("", reasoning="Step 1: the image shows", finish_reason="length")
    done = gen("", reasoning="I decline.", finish_reason="stop")
    for parse in (parse_think_prefilled, parse_kimi, parse_glm):
        assert parse(cut).status is ParseStatus.UNTERMINATED
        assert parse(done).status is ParseStatus.MISSING_ANSWER


@pytest.mark.parametrize("name", ["kimi", "glm", "think_prefilled"])
def test_registered(name: str) -> None:
    parser = plugins.parsers.create(name, {}, PluginContext())
    assert parser.parse(gen("x")).parser == name
