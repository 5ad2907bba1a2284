"""Property tests: whatever bytes the config and dataset parsers get, they either parse or raise their
own clear error (ConfigError / DatasetError naming the file), never anything else."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safemlrm.core import plugins
from safemlrm.core.config import ConfigError, parse_config
from safemlrm.core.context import PluginContext
from safemlrm.datasets._common import DatasetError

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.floats(allow_nan=True), st.text(max_size=12))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
config_keys = st.sampled_from(
    ["name", "datasets", "targets", "judges", "attacks", "parts", "concurrency", "seed", "judge_cache", "kind"]
)
config_like = st.dictionaries(config_keys, values, max_size=6)


@SETTINGS
@given(text=st.text(max_size=300))
def test_config_text_parses_or_gives_a_config_error(text: str) -> None:
    try:
        parse_config(text, source="fuzz.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.yaml")


@SETTINGS
@given(data=config_like)
def test_config_structures_parse_or_give_a_config_error(data: dict[str, Any]) -> None:
    try:
        parse_config(yaml.safe_dump(data), source="fuzz.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.yaml")


@SETTINGS
@given(overrides=st.lists(st.text(max_size=30), max_size=3))
def test_overrides_apply_or_give_a_config_error(overrides: list[str]) -> None:
    base = "datasets: [{kind: jsonl, params: {path: d.jsonl}}]\ntargets: [{name: t, kind: fake}]\n"
    with contextlib.suppress(ConfigError):
        parse_config(base, source="fuzz.yaml", overrides=overrides)


def load_all(kind: str, path: Path) -> int:
    dataset = plugins.datasets.create(kind, {"path": path.name}, PluginContext(label=kind, base_dir=path.parent))
    return sum(1 for _ in dataset.load())


row_values = st.one_of(
    scalars, st.lists(scalars, max_size=2), st.dictionaries(st.text(max_size=4), scalars, max_size=2)
)
rows = st.lists(
    st.dictionaries(st.sampled_from(["id", "instruction", "prompt", "category", "benign", "image", "x"]), row_values),
    max_size=5,
)


@SETTINGS
@given(items=rows, junk=st.lists(st.text(max_size=20), max_size=2))
def test_jsonl_rows_load_or_give_a_dataset_error_naming_the_file(items: list[dict[str, Any]], junk: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.jsonl"
        lines = [json.dumps(item) for item in items] + junk
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            load_all("jsonl", path)
        except DatasetError as exc:
            assert "fuzz.jsonl" in str(exc)


@SETTINGS
@given(content=st.binary(max_size=300))
def test_jsonl_bytes_load_or_give_a_dataset_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.jsonl"
        path.write_bytes(content)
        try:
            load_all("jsonl", path)
        except DatasetError as exc:
            assert "fuzz.jsonl" in str(exc)


@SETTINGS
@given(content=st.text(alphabet=st.sampled_from(list('ab,"\n\r id instruction prompt image benign')), max_size=200))
def test_csv_text_loads_or_gives_a_dataset_error(content: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        path.write_text(content, encoding="utf-8")
        try:
            load_all("csv", path)
        except DatasetError as exc:
            assert "fuzz.csv" in str(exc)


@SETTINGS
@given(content=st.binary(max_size=200))
def test_csv_bytes_load_or_give_a_dataset_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        path.write_bytes(b"id,instruction,prompt\n" + content)
        try:
            load_all("csv", path)
        except DatasetError as exc:
            assert "fuzz.csv" in str(exc)
