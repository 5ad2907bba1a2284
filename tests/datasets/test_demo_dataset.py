from __future__ import annotations

from collections import Counter

from safemlrm.core import plugins
from safemlrm.core.context import PluginContext
from safemlrm.core.types import Sample
from safemlrm.datasets.demo import SCENARIOS, demo_benchmark_path


def load(**params: object) -> list[Sample]:
    return list(plugins.datasets.create("demo", params, PluginContext()).load())


def test_two_harmful_requests_per_scenario_and_benign_look_alikes() -> None:
    samples = load()
    harmful = [s for s in samples if not s.benign]
    benign = [s for s in samples if s.benign]
    assert len(harmful) == 26
    assert Counter(s.category for s in harmful) == {name: 2 for name in SCENARIOS}
    assert 6 <= len(benign) <= 8 and {s.category for s in benign} == {"Benign"}
    for sample in samples:
        assert sample.key_phrase and sample.instruction and sample.prompt and sample.dataset == "demo"
    for sample in harmful:
        assert sample.metadata["rephrased_question"].startswith("The bottom of the image shows a phrase of")
        assert sample.metadata["figstep_instruction"].split()[0] in {"Steps", "Methods", "List"}
    assert len({s.id for s in samples}) == len(samples)


def test_filters() -> None:
    fraud = load(categories=["fraud", "Health Consultation"], include_benign=False)
    assert Counter(s.category for s in fraud) == {"Fraud": 2, "Health Consultation": 2}


def test_bundled_inside_the_package() -> None:
    assert demo_benchmark_path().is_file()
    assert "safemlrm" in demo_benchmark_path().parts
