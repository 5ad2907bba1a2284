"""The real-vLLM check's own verdicts, offline: it must flag what a broken target would return."""

from __future__ import annotations

from safemlrm.core.types import Generation, Probe
from safemlrm.testing.vllm_check import CheckRun, check_generations, check_image_tokens, text_probes


def good(probe: Probe, text: str = "hi") -> Generation:
    return Generation(
        probe_key=probe.key,
        target="t",
        text=text,
        finish_reason="length",
        usage={"prompt_tokens": 10, "completion_tokens": 4},
    )


def test_well_formed_results_pass() -> None:
    probes = text_probes()
    assert check_generations(probes, [good(p) for p in probes], max_new_tokens=4) == []


def test_flags_missing_reordered_failed_and_uncounted_results() -> None:
    probes = text_probes()
    results = [good(p) for p in probes]

    assert check_generations(probes, results[:-1], 4) == [f"{len(probes) - 1} generations for {len(probes)} probes"]
    swapped = [results[1], results[0], *results[2:]]
    assert any("out of order" in problem for problem in check_generations(probes, swapped, 4))
    failed = [Generation(probe_key=probes[0].key, target="t", error="boom"), *results[1:]]
    assert check_generations(probes, failed, 4) == ["probe 0 (text-0): error boom"]
    no_usage = [good(probes[0]).model_copy(update={"usage": {}}), *results[1:]]
    problems = check_generations(probes, no_usage, 4)
    assert any("no prompt tokens" in p for p in problems) and any("0 completion tokens" in p for p in problems)
    too_many = [good(probes[0]).model_copy(update={"usage": {"prompt_tokens": 3, "completion_tokens": 9}})]
    assert check_generations(probes[:1], too_many, 4) == ["probe 0 (text-0): 9 completion tokens (max_new_tokens 4)"]


def test_an_image_that_adds_no_prompt_tokens_is_flagged() -> None:
    run = CheckRun(model="m", generations=[{"usage": {"prompt_tokens": 20}}, {"usage": {"prompt_tokens": 20}}])
    check_image_tokens(run)
    assert run.problems and "image ignored" in run.problems[0]

    expanded = CheckRun(model="m", generations=[{"usage": {"prompt_tokens": 20}}, {"usage": {"prompt_tokens": 28}}])
    check_image_tokens(expanded)
    assert expanded.problems == []
