"""scripts/train_cross_encoder.py: honest evaluation folds, and training that matches what the judge runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.helpers import import_script, needs_encoder


@pytest.fixture(scope="module")
def script() -> Any:
    return import_script("train_cross_encoder")


def rows(script: Any) -> list[Any]:
    row = script.linear.Row
    out = []
    for i in range(12):
        out.append(row("jbb", f"g{i % 4}", f"request {i % 4}", f"jbb answer {i}", i % 2))
        out.append(row("harmbench", f"h{i % 4}", f"behaviour {i % 4}", f"hb answer {i}", (i + 1) % 2))
        out.append(row("gptfuzz", f"g{i % 4}" if i < 4 else f"x{i}", "other", f"extra {i}", i % 2))
    return out


def test_no_row_of_a_test_request_ever_trains(script: Any) -> None:
    data = rows(script)
    extra, substitute, variants = script.hidden_request_rows(data, ["P1", "P2", ""], 0.5, 0)
    every = data + extra
    source = np.array([r.source for r in every])
    groups = np.array([r.group for r in every])
    fits: list[tuple[np.ndarray, list[np.ndarray]]] = []

    class Recorder(script.Trainer):  # type: ignore[misc, name-defined]
        def fit(self, idx: np.ndarray) -> Any:
            fits.append((self.training_rows(idx), []))
            return None

        def logits(self, net: Any, idx: np.ndarray) -> np.ndarray:
            fits[-1][1].append(np.asarray(idx))
            return np.tile([0.0, 1.0], (len(idx), 1))

    labels = np.array([r.label for r in every])
    trainer = Recorder([None] * len(every), labels, None, None, argparse.Namespace(), substitute)
    metrics, temperature = script.evaluate(trainer, data, 3, 0, variants)
    assert len(fits) == 2 + 3 and temperature > 0
    variant_rows = {i for index in variants.values() for i in index.values()}
    for train, tests in fits:
        tested = np.concatenate(tests)
        assert len(tested) and not set(groups[train]) & set(groups[tested])
        assert set(substitute.values()) & set(train.tolist())  # hidden-request substitutes do train
        assert not variant_rows & set(train.tolist())  # evaluation copies never do
        assert not set(substitute) & set(train.tolist())  # a substituted row trains only as its substitute
        # each test row is judged once as asked and once per hidden-request prompt
        assert len(tests) == 1 + len(variants)
        for name, index in variants.items():
            shown = {every[i].instruction for test in tests for i in test if i in set(index.values())}
            assert shown == {script.HIDDEN_EVAL[name]}
    # out of source: the JBB test trains on no JBB row and on no extra row answering a JBB request
    first_tested = fits[0][1][0]
    assert set(source[first_tested]) == {"jbb"} and "jbb" not in set(source[fits[0][0]])
    assert not {"g0", "g1", "g2", "g3"} & set(groups[fits[0][0]])
    folds_tested = np.concatenate([tests[0] for _, tests in fits[2:]])
    assert sorted(folds_tested) == sorted(np.where(np.isin(source[: len(data)], ["jbb", "harmbench"]))[0])
    plain = {"out_of_source_to_jbb", "out_of_source_to_harmbench", "grouped_3fold_jbb", "grouped_3fold_harmbench"}
    assert set(metrics) == plain | {f"{key}_hidden_{name}" for key in plain for name in script.HIDDEN_EVAL}


def test_dev_repeat_trains_dev_rows_more_often_and_never_a_test_row(script: Any) -> None:
    data = rows(script)
    source = np.array([r.source for r in data])
    groups = np.array([r.group for r in data])
    repeats = np.where(np.isin(source, ["jbb", "harmbench"]), 3, 1)
    fits: list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]] = []

    class Recorder(script.Trainer):  # type: ignore[misc, name-defined]
        def fit(self, idx: np.ndarray) -> Any:
            fits.append((np.asarray(idx), self.training_rows(idx), []))
            return None

        def logits(self, net: Any, idx: np.ndarray) -> np.ndarray:
            fits[-1][2].append(np.asarray(idx))
            return np.tile([0.0, 1.0], (len(idx), 1))

    labels = np.array([r.label for r in data])
    trainer = Recorder([None] * len(data), labels, None, None, argparse.Namespace(), None, 2, repeats)
    script.evaluate(trainer, data, 3, 0, {})
    assert len(fits) == 2 + 3
    for asked, trained, tested in fits:
        counts = np.bincount(trained, minlength=len(data))
        assert set(trained.tolist()) == set(asked.tolist())  # repeats add no row that was not asked for
        assert all(counts[i] == (3 if source[i] in ("jbb", "harmbench") else 1) for i in asked)
        # a repeated row is still never a row of a tested request
        assert tested and not set(groups[trained]) & set(groups[np.concatenate(tested)])


def test_hidden_request_rows_keep_response_label_and_group(script: Any) -> None:
    data = rows(script)
    extra, substitute, variants = script.hidden_request_rows(data, ["P1", ""], 0.5, 0)
    assert 0 < len(substitute) < len(data)
    for original, copy in substitute.items():
        row, hidden = data[original], extra[copy - len(data)]
        assert (hidden.response, hidden.label, hidden.group, hidden.source) == (
            row.response,
            row.label,
            row.group,
            row.source,
        )
        assert hidden.instruction in {"P1", ""}
    dev_rows = [i for i, r in enumerate(data) if r.source in script.DEV]
    assert all(sorted(index) == dev_rows for index in variants.values())
    assert len(extra) == len(substitute) + len(dev_rows) * len(script.HIDDEN_EVAL)
    none, no_substitute, _ = script.hidden_request_rows(data, ["P1"], 0.0, 0)
    assert not no_substitute and len(none) == len(dev_rows) * len(script.HIDDEN_EVAL)


def test_hidden_request_prompts_come_from_the_attacks(script: Any) -> None:
    data = Path(__file__).resolve().parents[3] / "shared" / "data"
    if not (data / "benchmarks" / "mm_safetybench" / "processed_questions").is_dir():
        pytest.skip("../shared/data/benchmarks/mm_safetybench is absent: the MM-SafetyBench questions are needed")
    prompts = script.hidden_request_prompts(data)
    from safemlrm.attacks.figstep import FIGSTEP_PROMPT

    assert FIGSTEP_PROMPT in prompts and "" in prompts
    assert all(p in prompts for p in script.HIDDEN_EVAL.values())
    assert sum(p.startswith("The bottom of the image shows a phrase") for p in prompts) > 20
    assert len(prompts) == len(set(prompts))


@needs_encoder
@pytest.mark.slow
def test_the_judge_reproduces_what_training_saw(script: Any, tmp_path: Path) -> None:
    """Frozen states (as trained on) + trained top layers give what the shipped runtime gives."""
    from safemlrm.judges._cross_encoder import (
        CrossEncoder,
        CrossEncoderHead,
        cross_encoder_from_bytes,
    )
    from safemlrm.judges._offline_features import read_model_files

    data = rows(script)[:10]
    data.append(script.linear.Row("jbb", "long", "How?", "Thinking it over. " * 900 + "I refuse.", 0))
    states, top, torch = script.frozen_states(data, 4)
    args = argparse.Namespace(seed=0, lr=1e-4, head_lr=1e-3, epochs=1, batch_size=4)
    trainer = script.Trainer(states, np.array([r.label for r in data]), top, torch, args)
    net = trainer.fit(np.arange(len(data)))
    expected = trainer.logits(net, np.arange(len(data)))
    meta = {"n_frozen": 4, "encoder": {"max_length": 256, "quantize": True}}
    CrossEncoderHead(("not_harmful", "harmful"), script.tensors_of(net), 1.0, meta, "").save(tmp_path / "m")
    model = CrossEncoder(cross_encoder_from_bytes(*read_model_files(str(tmp_path / "m.npz")), "m"))
    got = model.logits([(r.instruction, r.response) for r in data])
    # int8 storage and int8 inference of the top layers move logits by a few hundredths at most
    assert np.abs(got - expected).max() < 0.1
    assert all(state.shape[0] <= 256 for state in states)


def test_refusal_evaluation_keeps_prompts_and_models_apart(script: Any) -> None:
    row = script.linear.Row
    data = [row("xstest", f"p{i % 6}", f"prompt {i % 6}", f"answer {i}", i % 3, ("m1", "m2")[i % 2]) for i in range(24)]
    data += [row("synthetic", f"p{i}", f"prompt {i}", "I can't help with that.", 1, "synthetic") for i in range(3)]
    groups = np.array([r.group for r in data])
    models = np.array([r.model for r in data])
    fits: list[tuple[np.ndarray, np.ndarray]] = []

    class Recorder(script.Trainer):  # type: ignore[misc, name-defined]
        def fit(self, idx: np.ndarray) -> Any:
            fits.append((self.training_rows(idx), np.array([], dtype=int)))
            return None

        def logits(self, net: Any, idx: np.ndarray) -> np.ndarray:
            fits[-1] = (fits[-1][0], np.asarray(idx))
            return np.tile([0.0, 2.0, 0.0], (len(idx), 1))

    trainer = Recorder([None] * len(data), np.array([r.label for r in data]), None, None, argparse.Namespace(), None, 3)
    metrics, temperature = script.evaluate_refusal(trainer, data, 3, 0)
    assert len(fits) == 3 + 2 and temperature > 0
    for train, test in fits[:3]:
        assert not set(groups[train]) & set(groups[test])
        assert "synthetic" not in set(models[test])
    tested = np.concatenate([test for _, test in fits[:3]])
    assert sorted(tested) == list(range(24))
    for (train, test), held_out in zip(fits[3:], ("m1", "m2"), strict=True):
        assert set(models[test]) == {held_out} and held_out not in set(models[train])
    assert set(metrics) == {
        "grouped_3fold_binary",
        "grouped_3fold_3class_accuracy",
        "leave_model_out_m1_binary",
        "leave_model_out_m2_binary",
    }
    # every real row is predicted "full_refusal": refused (binary 1) for all
    assert metrics["grouped_3fold_binary"]["false_negative_rate"] == 0.0


def test_predictions_come_from_the_fit_that_held_each_row_out(script: Any, tmp_path: Path) -> None:
    data = rows(script)
    extra, substitute, variants = script.hidden_request_rows(data, ["P1"], 0.0, 0)
    every = data + extra
    tested_by: list[set[int]] = []

    class Recorder(script.Trainer):  # type: ignore[misc, name-defined]
        def fit(self, idx: np.ndarray) -> Any:
            tested_by.append(set())
            return len(tested_by)  # the "model" is the fit's number

        def logits(self, net: Any, idx: np.ndarray) -> np.ndarray:
            if all(i < len(data) for i in idx):
                tested_by[net - 1].update(int(i) for i in idx)
            # P(harmful) = sigmoid(fit number), and 0.5 lower behind a hidden-request prompt
            shift = 0.0 if all(i < len(data) for i in idx) else -0.5
            return np.tile([0.0, float(net) + shift], (len(idx), 1))

    labels = np.array([r.label for r in every])
    trainer = Recorder([None] * len(every), labels, None, None, argparse.Namespace(), substitute)
    predictions: dict[int, dict[str, float]] = {}
    script.evaluate(trainer, data, 3, 0, variants, predictions)

    def fit_of(p: float) -> int:
        return round(float(np.log(p / (1 - p))))

    dev = [i for i, r in enumerate(data) if r.source in script.DEV]
    assert sorted(predictions) == dev
    for i in dev:
        oos, cv = predictions[i]["out_of_source"], predictions[i]["grouped_3fold"]
        assert i in tested_by[fit_of(oos) - 1] and fit_of(oos) in (1, 2)  # the out-of-source fits come first
        assert i in tested_by[fit_of(cv) - 1] and fit_of(cv) > 2
        hidden = predictions[i]["grouped_3fold_hidden_mm_safetybench"]
        assert abs(float(np.log(hidden / (1 - hidden))) - (fit_of(cv) - 0.5)) < 1e-3

    args = argparse.Namespace(**{key: 0 for key in script.SETTINGS})
    script.write_predictions(tmp_path / "p.json", data, predictions, args)
    written = json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))
    assert set(written["settings"]) == set(script.SETTINGS)
    for entry, i in zip(written["rows"], dev, strict=True):
        same_source = [j for j, r in enumerate(data) if r.source == entry["source"]]
        assert same_source[entry["ordinal"]] == i and entry["label"] == data[i].label
        assert "response" not in entry and "instruction" not in entry  # no text leaves the shared data
