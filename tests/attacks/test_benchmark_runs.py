"""The example benchmark configs end to end (fake targets): MM-SafetyBench tiny text + TYPO, SafeBench-Tiny FigStep."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from tests.attacks._helpers import needs_freemono, needs_liberation

from safemlrm.core.store import load_run
from safemlrm.verbs import api

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FAKE_TARGETS = (
    "targets=[{name: base, kind: fake, parser: plain, params: {default: 'I cannot help with that.'}},"
    " {name: reasoner, kind: fake, base: base, reasoning: true}]"
)


@pytest.mark.slow
@needs_liberation
def test_mm_safetybench_tiny_text_and_typography(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "benchmarks" / "mm_safetybench"
    overrides = [FAKE_TARGETS, f"datasets.0.params.root={root}", "judge_cache=null"]
    first = api.run(EXAMPLES / "mm_safetybench_tiny.yaml", tmp_path / "run", overrides=overrides)
    assert (first.counters.samples, first.counters.probes, first.counters.target_calls) == (168, 336, 672)
    data = load_run(tmp_path / "run")
    probes = {r.probe.key: r.probe for r in data.records}
    typo = [p for p in probes.values() if p.attack == "typography"]
    vanilla = [p for p in probes.values() if p.attack == "vanilla"]
    assert len(typo) == len(vanilla) == 168
    assert all(p.user_text.startswith("The bottom of the image") and len(p.images) == 1 for p in typo)
    # the study's vanilla condition: the Changed Question, which is also what the judge scores
    instructions = {r.probe.key: r.sample.instruction for r in data.records}
    assert all(not p.images and p.user_text == instructions[p.key] for p in vanilla)
    assert Image.open(typo[0].images[0].path).width == 1024
    again = api.run(EXAMPLES / "mm_safetybench_tiny.yaml", tmp_path / "run", overrides=overrides)
    assert again.counters.target_calls == 0 and again.counters.judge_calls == 0


@needs_freemono
def test_safebench_tiny_figstep(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "benchmarks" / "figstep"
    overrides = [FAKE_TARGETS, f"datasets.0.params.path={path}", "judge_cache=null"]
    result = api.run(EXAMPLES / "safebench_figstep.yaml", tmp_path / "run", overrides=overrides)
    assert (result.counters.samples, result.counters.probes) == (50, 100)
    figstep = {r.probe.key: r.probe for r in load_run(tmp_path / "run").records if r.probe.attack == "figstep"}
    assert len(figstep) == 50
    assert all(Image.open(p.images[0].path).size == (760, 760) for p in figstep.values())
