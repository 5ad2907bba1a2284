"""The plugin-author API: every exported name resolves, and its documented example is a working plugin."""

from __future__ import annotations

import re

import pytest

from safemlrm import plugin_api
from safemlrm.core import plugins
from safemlrm.testing import plugin_context


def test_every_exported_name_resolves() -> None:
    missing = [name for name in plugin_api.__all__ if not hasattr(plugin_api, name)]
    assert not missing
    assert len(set(plugin_api.__all__)) == len(plugin_api.__all__)
    # The registries are the package's own: a plugin registered through the API is found by runs.
    assert plugin_api.judges is plugins.judges and plugin_api.parsers is plugins.parsers


def test_the_documented_example_registers_a_working_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    plugins.parsers.names()  # load the built-ins, then register the example for this test only
    monkeypatch.setattr(plugins.parsers, "_plugins", dict(plugins.parsers._plugins))
    doc = plugin_api.__doc__ or ""
    example = re.search(r"::\n\n(.*?)\n\nA third-party", doc, re.S)
    assert example is not None
    code = "\n".join(line[4:] for line in example.group(1).splitlines())
    exec(compile(code, "plugin_api example", "exec"), {})
    parser = plugins.parsers.create("last_line", {}, plugin_context(label="last_line"))
    generation = plugin_api.Generation(probe_key="p", target="t", text="think\nthe answer")
    parsed = parser.parse(generation)
    assert (parsed.reasoning, parsed.answer) == ("think", "the answer")
