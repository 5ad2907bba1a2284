"""Mulberry: its native ``###`` step sections, or think tags when it was prompted for them.

Mulberry's own inference prompt (HJYao00/Mulberry ``infer.py``) asks for sections separated by
``###``::

    ### Image Description:
    ### Rationales:
    ### Let's think step by step.
    ### Step 1:
    ### Step 2:
    ...
    ### The final answer is: <answer>

and Mulberry's code takes the text after ``### The final answer is:`` as the answer. Reflection
("I think I have made a mistake. Let me rethink it.") can restart the steps, so the split is at the
LAST final-answer marker. The SafeMLRM study instead prompted Mulberry with MM-Eureka's think-tag
system message; when think tags are present this parser applies the ``think_tags`` rules.

Statuses: the marker with text after it ``ok``; the marker with nothing after it ``missing_answer``;
step sections that never reach the marker (a truncated output) ``unterminated``; neither sections
nor tags ``no_reasoning`` (all answer).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from safemlrm.parsers._common import build, from_native, last_match, preflight, tag_patterns
from safemlrm.parsers.think_tags import parse_think_tags
from safemlrm.plugin_api import Generation, ParsedOutput, ParseStatus, PluginContext, parsers

NAME = "mulberry"
THINK_OPEN, THINK_CLOSE = tag_patterns("think")
# "### The final answer is:" at the start of a line. Without the hashes (the prompt's instruction
# quotes the phrase without them) the colon is required, so a sentence that merely starts with the
# words does not count.
FINAL_ANSWER = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*the final answer is[ \t]*:?|the final answer is[ \t]*:)",
    re.IGNORECASE | re.MULTILINE,
)
# Mulberry's reasoning section headings: a truncated output has these but no final-answer marker.
SECTION = re.compile(
    r"^[ \t]*#{1,6}[ \t]*(?:image description|rationales?|let'?s think step by step|step[ \t]*\d+)\b",
    re.IGNORECASE | re.MULTILINE,
)


def parse_mulberry(generation: Generation, *, parser_name: str = NAME) -> ParsedOutput:
    failed = preflight(generation, parser_name)
    if failed is not None:
        return failed
    native = from_native(generation, parser_name)
    if native is not None:
        return native
    text = generation.text
    if THINK_OPEN.search(text) or THINK_CLOSE.search(text):
        return parse_think_tags(generation, parser_name=parser_name)
    marker = last_match(FINAL_ANSWER, text)
    if marker is not None:
        return build(generation, parser_name, text[: marker.start()], text[marker.end() :])
    if SECTION.search(text):
        return build(generation, parser_name, text, "", ParseStatus.UNTERMINATED)
    return build(generation, parser_name, "", text)


@parsers.register(NAME)
class MulberryParser:
    """Mulberry ``### Step N:`` sections ending in ``### The final answer is:`` (or think tags)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params

    def parse(self, generation: Generation) -> ParsedOutput:
        return parse_mulberry(generation)
