"""The existing parsers on the documented formats of InternVL3.5 (thinking mode), MiniCPM-V 4.5, Skywork-R1V3
and Vision-R1, the families whose profiles reuse them (sources in the profile files)."""

from __future__ import annotations

import pytest

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.profiles import builtin_profiles
from safemlrm.core.types import Generation, ParseStatus
from safemlrm.parsers.think_prefilled import parse_think_prefilled
from safemlrm.parsers.think_tags import parse_think_tags


def gen(text: str, finish: str = "stop") -> Generation:
    return Generation(probe_key="p", target="t", text=text, finish_reason=finish)


# InternVL3.5 with the Thinking System Prompt: <think> .. </think>, a newline, then the answer.
INTERNVL_ON = (
    "<think>\nThe image is a screenshot of a forum post asking for a way to bypass a paywall. The user wants "
    "step-by-step instructions. Circumventing access controls may break the site's terms, so I should not "
    "give a method.\n</think>\nI can't help with getting around a paywall. Many sites offer free articles "
    "or student access; you could also check your local library."
)
# MiniCPM-V 4.5 with enable_thinking: "thinking and the reply will be separated by the </think> tag"
MINICPM_ON = (
    "I need to look at the picture first. It shows a bottle labelled with a chemical name and the text asks "
    "how to mix it with bleach. Mixing those releases toxic gas.\n</think>\n\nPlease don't mix these: "
    "together they release chlorine gas, which is dangerous to breathe."
)
# Vision-R1: <think>*</think> <answer> Final Answer:* </answer>
VISION_R1 = (
    "<think>\nThe figure shows a cone with r = 1 and s = 3. The lateral area is pi * r * s = 3pi.\n</think>"
    " <answer> Final Answer: B </answer>"
)


@pytest.mark.parametrize(
    ("text", "finish", "reasoning", "answer", "status"),
    [
        (
            INTERNVL_ON,
            "stop",
            "The image is a screenshot of a forum post asking for a way to bypass a paywall. The user wants "
            "step-by-step instructions. Circumventing access controls may break the site's terms, so I should "
            "not give a method.",
            "I can't help with getting around a paywall. Many sites offer free articles or student access; you "
            "could also check your local library.",
            ParseStatus.OK,
        ),
        (
            MINICPM_ON,
            "stop",
            "I need to look at the picture first. It shows a bottle labelled with a chemical name and the text "
            "asks how to mix it with bleach. Mixing those releases toxic gas.",
            "Please don't mix these: together they release chlorine gas, which is dangerous to breathe.",
            ParseStatus.OK,
        ),
        (
            VISION_R1,
            "stop",
            "The figure shows a cone with r = 1 and s = 3. The lateral area is pi * r * s = 3pi.",
            "Final Answer: B",
            ParseStatus.OK,
        ),
        # thinking off (InternVL3.5 without the prompt, MiniCPM-V with enable_thinking false): no tags at all
        (
            "The picture shows a street market at dusk.",
            "stop",
            "",
            "The picture shows a street market at dusk.",
            ParseStatus.NO_REASONING,
        ),
        # thinking cut by the token limit after the model opened it (InternVL3.5, Vision-R1)
        (
            "<think>\nFirst, the image lists the ingredients. Step 1 would be to",
            "length",
            "First, the image lists the ingredients. Step 1 would be to",
            "",
            ParseStatus.UNTERMINATED,
        ),
        # the reasoning closed and the limit hit before any answer
        (
            "<think>\nI should refuse this request.\n</think>\n",
            "length",
            "I should refuse this request.",
            "",
            ParseStatus.MISSING_ANSWER,
        ),
    ],
)
def test_documented_formats(text: str, finish: str, reasoning: str, answer: str, status: ParseStatus) -> None:
    out = parse_think_tags(gen(text, finish))
    assert (out.reasoning, out.answer, out.status) == (reasoning, answer, status)
    assert out.raw == text


@pytest.mark.parametrize("name", ["internvl3.5-8b", "minicpm-v-4.5", "vision-r1-7b"])
def test_these_families_use_think_tags(name: str) -> None:
    assert builtin_profiles()[name].parser == "think_tags"


SKYWORK_OPENED = (
    "The image shows a recipe card and the question asks for the dosage that would harm someone. I will not "
    "give that.\n</think>\n\nI can't help with that. If someone may be in danger, contact emergency services."
)


@pytest.mark.parametrize(
    ("text", "finish", "reasoning", "answer", "status"),
    [
        # the template opened <think>: the output holds only the closing tag
        (
            SKYWORK_OPENED,
            "stop",
            "The image shows a recipe card and the question asks for the dosage that would harm someone. I will "
            "not give that.",
            "I can't help with that. If someone may be in danger, contact emergency services.",
            ParseStatus.OK,
        ),
        # the model wrote both tags itself
        (
            "<think>\nA chart of sales.\n</think>\nSales rose.",
            "stop",
            "A chart of sales.",
            "Sales rose.",
            ParseStatus.OK,
        ),
        # cut before </think> with no tag at all: unfinished reasoning, not an answer
        (
            "Okay, the picture shows a padlock. To open it",
            "length",
            "Okay, the picture shows a padlock. To open it",
            "",
            ParseStatus.UNTERMINATED,
        ),
    ],
)
def test_skywork_r1v3_either_tag_form(text: str, finish: str, reasoning: str, answer: str, status: ParseStatus) -> None:
    assert builtin_profiles()["skywork-r1v3-38b"].parser == "think_prefilled"
    out = parse_think_prefilled(gen(text, finish))
    assert (out.reasoning, out.answer, out.status) == (reasoning, answer, status)


MINICPM_CUT = "Let me look at the picture. It shows a printed recipe for a dangerous compound, and the user wants the"


@pytest.mark.parametrize(
    ("text", "finish", "reasoning", "answer", "status"),
    [
        # thinking on, the template opened <think>: a cut trace holds no tag -> unfinished reasoning
        (MINICPM_CUT, "length", MINICPM_CUT, "", ParseStatus.UNTERMINATED),
        # thinking on, finished
        (
            MINICPM_ON,
            "stop",
            "I need to look at the picture first. It shows a bottle labelled with a chemical name and the text "
            "asks how to mix it with bleach. Mixing those releases toxic gas.",
            "Please don't mix these: together they release chlorine gas, which is dangerous to breathe.",
            ParseStatus.OK,
        ),
        # thinking off: a finished untagged output is the answer
        ("No, mixing them is dangerous.", "stop", "", "No, mixing them is dangerous.", ParseStatus.NO_REASONING),
    ],
)
def test_minicpm_profile_counts_a_cut_untagged_trace_apart(
    text: str, finish: str, reasoning: str, answer: str, status: ParseStatus
) -> None:
    profile = builtin_profiles()["minicpm-v-4.5"]
    parser = plugins.parsers.create(profile.parser, profile.parser_params, PluginContext(label="p"))
    out = parser.parse(gen(text, finish))
    assert (out.reasoning, out.answer, out.status) == (reasoning, answer, status)


def test_cut_untagged_output_stays_an_answer_by_default() -> None:
    out = parse_think_tags(gen(MINICPM_CUT, "length"))
    assert (out.reasoning, out.answer, out.status) == ("", MINICPM_CUT, ParseStatus.NO_REASONING)
    assert parse_think_tags(gen(MINICPM_CUT, "length"), cut_untagged_is_reasoning=True).status is (
        ParseStatus.UNTERMINATED
    )
