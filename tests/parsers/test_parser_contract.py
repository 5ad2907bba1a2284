"""Every registered parser keeps the raw text and handles failed and empty generations the same way."""

from __future__ import annotations

import pytest

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.protocols import ReasoningParser
from safemlrm.core.types import Generation, ParseStatus

BUILTIN = {"think_tags", "eureka", "mulberry", "llava_cot", "native", "plain", "kimi", "glm", "think_prefilled"}
REGISTERED = plugins.parsers.names()  # every parser, built-in or added by a package: checked the same way


def test_builtin_parsers_are_registered() -> None:
    assert set(REGISTERED) >= BUILTIN


@pytest.mark.parametrize("name", REGISTERED)
def test_parser_contract(name: str) -> None:
    parser = plugins.parsers.create(name, {}, PluginContext().with_label(name))
    assert isinstance(parser, ReasoningParser)
    hostile = "<think>\x00<script>alert(1)</script>" + "<" * 5000 + "</think>" * 3 + "ﬁnal"
    for generation, status in [
        (Generation(probe_key="p", target="t", text="partial", error="timeout"), ParseStatus.ERROR),
        (Generation(probe_key="p", target="t", text=""), ParseStatus.EMPTY),
        (Generation(probe_key="p", target="t", text=hostile), None),
    ]:
        out = parser.parse(generation)
        assert out.raw == generation.text
        assert out.parser == name
        if status is not None:
            assert out.status is status
        assert parser.parse(generation) == out  # pure: the same input gives the same output


@pytest.mark.parametrize("name", REGISTERED)
def test_parsers_take_no_unknown_params(name: str) -> None:
    with pytest.raises(ValueError, match="invalid params"):
        plugins.parsers.create(name, {"no_such_option": 1}, PluginContext())
