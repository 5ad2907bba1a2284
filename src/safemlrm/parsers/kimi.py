"""Kimi-VL Thinking: ``◁think▷reasoning◁/think▷answer``.

Kimi-VL-A3B-Thinking writes its reasoning between the markers ``◁think▷`` and ``◁/think▷`` (the
``thought_words`` of the ``kimi_vl`` template in LLaMA-Factory, which Moonshot's README points to for
fine-tuning), then the answer. Rules (see ``split_at_close``): split at the last ``◁/think▷``; an
opened ``◁think▷`` that never closes is all reasoning (``unterminated``); no markers at all is all
answer (``no_reasoning``); a native reasoning field wins over the text. Spaces inside the markers
are tolerated; the markers are matched literally otherwise.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from safemlrm.parsers._common import split_at_close
from safemlrm.plugin_api import Generation, ParsedOutput, PluginContext, parsers

NAME = "kimi"
THINK_OPEN = re.compile(r"◁[ \t]*think[ \t]*▷", re.IGNORECASE)
THINK_CLOSE = re.compile(r"◁[ \t]*/[ \t]*think[ \t]*▷", re.IGNORECASE)


def parse_kimi(generation: Generation, *, parser_name: str = NAME) -> ParsedOutput:
    return split_at_close(generation, parser_name, THINK_OPEN, THINK_CLOSE)


@parsers.register(NAME)
class KimiParser:
    """Kimi-VL ``◁think▷reasoning◁/think▷answer``, split at the last closing marker."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params

    def parse(self, generation: Generation) -> ParsedOutput:
        return parse_kimi(generation)
