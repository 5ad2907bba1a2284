from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safemlrm.core.config import ConfigError, load_config, parse_config

GOOD = """\
name: t
datasets:
  - kind: jsonl
    params: {path: data.jsonl}
targets:
  - name: reasoner
    kind: fake
    base: base
  - name: base
    kind: fake
judges:
  - kind: keyword
"""


def test_good_config_parses_with_defaults() -> None:
    config = parse_config(GOOD)
    assert config.targets[0].base == "base"
    assert [p.value for p in config.parts] == ["reasoning", "answer", "whole"]
    assert config.attacks[0].kind == "vanilla"


def test_errors_name_the_field_and_line() -> None:
    bad = GOOD.replace("name: t\n", "name: t\nconcurrency: lots\n")
    with pytest.raises(ConfigError) as err:
        parse_config(bad, source="run.yaml")
    assert "run.yaml" in str(err.value) and "concurrency" in str(err.value) and "line 2" in str(err.value)


def test_nested_error_points_at_the_target_line() -> None:
    bad = GOOD.replace("    kind: fake\n    base: base", "    kind: fake\n    base: base\n    colour: red")
    with pytest.raises(ConfigError) as err:
        parse_config(bad)
    assert "targets.0.colour" in str(err.value) and "line 9" in str(err.value)


def test_malformed_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError, match=r"malformed YAML \(line [34]"):
        parse_config("name: t\ndatasets:\n  - kind: [unclosed\n")


def test_unknown_base_and_duplicate_targets_are_rejected() -> None:
    with pytest.raises(ConfigError, match="base 'nope'"):
        parse_config(GOOD.replace("base: base", "base: nope"))
    with pytest.raises(ConfigError, match="repeated: base"):
        parse_config(GOOD.replace("name: reasoner", "name: base").replace("    base: base\n", ""))


def test_overrides_by_index_and_by_name() -> None:
    config = parse_config(
        GOOD,
        overrides=[
            "targets.base.params.model=m1",
            "targets.0.params.temperature=0.7",
            "seed=7",
            "datasets.0.limit=3",
        ],
    )
    assert config.targets[1].params == {"model": "m1"}
    assert config.targets[0].params == {"temperature": 0.7}
    assert config.seed == 7 and config.datasets[0].limit == 3


def test_override_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match=r"no list item named 'ghost'"):
        parse_config(GOOD, overrides=["targets.ghost.params.x=1"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_config(GOOD, overrides=["seed"])


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        load_config(tmp_path / "missing.yaml")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_either_parses_or_raises_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(text)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["seed", "concurrency", "asr_threshold", "name", "parts"]),
        st.one_of(st.integers(), st.text(max_size=5), st.none(), st.lists(st.integers(), max_size=2)),
    )
)
def test_wrong_types_raise_config_error_not_crash(extra: dict[str, object]) -> None:
    import yaml

    data = yaml.safe_load(GOOD)
    data.update(extra)
    try:
        parse_config(yaml.safe_dump(data))
    except ConfigError as exc:
        assert "invalid configuration" in str(exc)


def test_offline_judge_is_the_default() -> None:
    config = parse_config(GOOD.replace("judges:\n  - kind: keyword\n", ""))
    assert [j.kind for j in config.judges] == ["offline"]


def test_a_target_that_is_its_own_base_is_rejected_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"target 'reasoner'.*its own base"):
        parse_config(GOOD.replace("base: base", "base: reasoner"))


def test_a_misspelt_key_suggests_the_right_one() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(GOOD + "attack:\n  - kind: vanilla\n", source="run.yaml")
    assert "attack" in str(err.value) and "did you mean 'attacks'?" in str(err.value)
    with pytest.raises(ConfigError, match="did you mean 'params'"):
        parse_config(GOOD.replace("    params: {path: data.jsonl}", "    parms: {path: data.jsonl}"))


def test_override_errors_point_at_the_flag_not_at_line_1() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(GOOD, source="run.yaml", overrides=["concurrency=lots"])
    assert "--set concurrency=lots: concurrency:" in str(err.value) and "line 1" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_config(GOOD, source="run.yaml", overrides=["targets.base.colour=red"])
    assert "--set targets.base.colour=red: targets.1.colour:" in str(err.value)


def test_the_config_knows_where_each_field_came_from() -> None:
    config = parse_config(GOOD, source="run.yaml", overrides=["targets.base.params.x=1"])
    assert str(config.locate(("targets", 0, "base"))) == "run.yaml (line 8)"
    assert str(config.locate(("targets", 1, "params", "x"))) == "--set targets.base.params.x=1"
