"""No split at all, for base models: the whole output is the answer, the reasoning is empty.

The status is ``no_reasoning`` (or ``empty`` / ``error``). Should a server still return a native
reasoning field, it stays in ``raw`` and so in the answer: nothing is discarded.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from safemlrm.parsers._common import build, preflight, raw_text
from safemlrm.plugin_api import Generation, ParsedOutput, ParseStatus, PluginContext, parsers

NAME = "plain"


def parse_plain(generation: Generation, *, parser_name: str = NAME) -> ParsedOutput:
    failed = preflight(generation, parser_name)
    if failed is not None:
        return failed
    return build(generation, parser_name, "", raw_text(generation), ParseStatus.NO_REASONING)


@parsers.register(NAME)
class PlainParser:
    """No split (base models): the whole output is the answer, status no_reasoning."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params

    def parse(self, generation: Generation) -> ParsedOutput:
        return parse_plain(generation)
