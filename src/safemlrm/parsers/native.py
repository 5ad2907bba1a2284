"""Reasoning only from the API's native field (``reasoning_content`` / ``reasoning``).

For servers that separate the reasoning themselves (vLLM reasoning parsers, DeepSeek-style APIs):
``Generation.reasoning`` is the reasoning and the text is the answer. Without that field the whole
text is the answer (status ``no_reasoning``); the text is never searched for tags.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from safemlrm.parsers._common import build, from_native, preflight
from safemlrm.plugin_api import Generation, ParsedOutput, PluginContext, parsers

NAME = "native"


def parse_native(generation: Generation, *, parser_name: str = NAME) -> ParsedOutput:
    failed = preflight(generation, parser_name)
    if failed is not None:
        return failed
    native = from_native(generation, parser_name)
    if native is not None:
        return native
    return build(generation, parser_name, "", generation.text)


@parsers.register(NAME)
class NativeParser:
    """Reasoning from the API's native reasoning field only; otherwise everything is the answer."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params

    def parse(self, generation: Generation) -> ParsedOutput:
        return parse_native(generation)
