from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest

from safemlrm.analysis.run_analysis import analyse_run
from safemlrm.core.records import RunData
from safemlrm.testing.synthetic import BASE, REASONING, synthetic_run
from safemlrm.verbs.compare import (
    CompareError,
    apply_pairs,
    before_after,
    compare_runs,
    merge_runs,
    register_cli,
    run_names,
)


def _only(run: RunData, label: str) -> RunData:
    targets = [dataclasses.replace(t, base=None) for t in run.targets if t.label == label]
    return dataclasses.replace(run, targets=targets, records=[r for r in run.records if r.generation.target == label])


def test_reasoning_vs_base_across_runs(tmp_path: Path) -> None:
    run = synthetic_run(per_scenario=3, n_benign=4, hostile=False)
    reasoning_run, base_run = _only(run, REASONING), _only(run, BASE)
    names = run_names(["/x/runs/reasoner", "/y/runs/base"])
    merged, renamed, _ = merge_runs([reasoning_run, base_run], names)
    assert {t.label for t in merged.targets} == {REASONING, BASE}  # no clash: labels kept
    paired = apply_pairs(merged, renamed, [f"{REASONING}={BASE}"])
    assert next(t for t in paired.targets if t.label == REASONING).base == BASE
    written = compare_runs([reasoning_run, base_run], names, tmp_path, pairs=[f"{REASONING}={BASE}"])
    summary = json.loads(written["summary.json"].read_text())
    assert summary["reasoning_tax"], "the pair across runs yields a reasoning tax"
    # the same numbers as when both models ran in one run
    single = analyse_run(run)
    expected = next(
        r
        for r in single.tax
        if r.group["scope"] == "overall" and r.group["judge"] == "rubric" and r.group["reasoning_part"] == "whole"
    )
    got = next(
        r
        for r in summary["reasoning_tax"]
        if r["scope"] == "overall" and r["judge"] == "rubric" and r["reasoning_part"] == "whole"
    )
    assert (got["n_pairs"], got["asr_diff"]) == (expected.n_pairs, expected.asr_diff.value)
    assert "Before / after" in written["compare.md"].read_text()


def test_before_after_of_the_same_target(tmp_path: Path) -> None:
    before = _only(synthetic_run(seed=1, per_scenario=4, n_benign=0, hostile=False), REASONING)
    after = _only(synthetic_run(seed=2, per_scenario=4, n_benign=0, hostile=False), REASONING)
    names = run_names(["/a/run", "/b/run"])
    assert names == ["run", "run-2"]
    merged, renamed, _ = merge_runs([before, after], names)
    assert renamed[REASONING] == [f"{REASONING}@run", f"{REASONING}@run-2"]
    rows = before_after(merged, renamed, names, n_resamples=200)
    overall = [
        r for r in rows if r.group["scope"] == "overall" and r.group["judge"] == "rubric" and r.group["part"] == "whole"
    ]
    assert len(overall) == 1
    o = overall[0]
    assert o.group["before"] == f"{REASONING}@run" and o.group["after"] == f"{REASONING}@run-2"
    # hand check of the pairing: same sample ids and attacks in both runs
    assert o.n_pairs + o.n_unpaired // 2 >= 13 * 4 * 2 - 4
    written = compare_runs([before, after], names, tmp_path)
    assert (tmp_path / "tables" / "before_after.csv").exists()
    assert json.loads(written["compare.json"].read_text())["before_after"]


def test_errors_are_clear() -> None:
    run = synthetic_run(per_scenario=1, n_benign=0, hostile=False)
    merged, renamed, _ = merge_runs([run, run], ["a", "b"])
    with pytest.raises(CompareError, match="several runs"):
        apply_pairs(merged, renamed, [f"{REASONING}={BASE}@a"])
    with pytest.raises(CompareError, match="no target 'nope'"):
        apply_pairs(merged, renamed, [f"nope={BASE}@a"])
    with pytest.raises(CompareError, match="REASONING_LABEL=BASE_LABEL"):
        apply_pairs(merged, renamed, ["justone"])
    other = dataclasses.replace(run, asr_threshold=3.0)
    with pytest.raises(CompareError, match="thresholds"):
        merge_runs([run, other], ["a", "b"])


def test_cli_parser() -> None:
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers())
    args = parser.parse_args(["compare", "r1", "r2", "--pair", "a=b", "--out", "o"])
    assert args.run_dirs == [Path("r1"), Path("r2")] and args.pair == ["a=b"] and args.out == Path("o")
    assert callable(args.handler)


def test_before_after_reads_one_sample_per_probe() -> None:
    """A run with k samples per probe pairs like its first sample, not k times over."""
    before = _only(synthetic_run(seed=1, per_scenario=2, n_benign=0, hostile=False), REASONING)
    after = _only(synthetic_run(seed=2, per_scenario=2, n_benign=0, hostile=False), REASONING)
    second = [dataclasses.replace(r, sample_index=1) for r in before.records]
    sampled = dataclasses.replace(before, records=[*before.records, *second])
    names = run_names(["/a/run", "/b/run"])

    def overall(runs: list[RunData]) -> tuple[int, int, float]:
        merged, renamed, _ = merge_runs(runs, names)
        rows = before_after(merged, renamed, names, n_resamples=50)
        (o,) = [
            r
            for r in rows
            if r.group["scope"] == "overall" and r.group["judge"] == "rubric" and r.group["part"] == "whole"
        ]
        return o.n_pairs, o.n_unpaired, o.asr_diff.value

    assert overall([sampled, after]) == overall([before, after])
