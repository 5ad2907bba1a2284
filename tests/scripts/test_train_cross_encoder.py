"""scripts/train_cross_encoder.py: honest evaluation folds, and training that matches what the judge runs."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.helpers import needs_encoder

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def script() -> Any:
    sys.path.insert(0, str(SCRIPTS))
    try:
        return importlib.import_module("train_cross_encoder")
    finally:
        sys.path.remove(str(SCRIPTS))



def rows(script: Any) -> list[Any]:
    row = script.linear.Row
    out = []
    for i in range(12):
        out.append(row("jbb", f"g{i % 4}", f"request {i % 4}", f"jbb answer {i}", i % 2))
        out.append(row("harmbench", f"h{i % 4}", f"behaviour {i % 4}", f"hb answer {i}", (i + 1) % 2))
        out.append(row("gptfuzz", f"g{i % 4}" if i < 4 else f"x{i}", "other", f"extra {i}", i % 2))
    return out


def test_no_row_of_a_test_request_ever_trains(script: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    data = rows(script)
    source = np.array([r.source for r in data])
    groups = np.array([r.group for r in data])
    seen: list[tuple[np.ndarray, np.ndarray]] = []

    class Recorder(script.Trainer):  # type: ignore[misc, name-defined]
        def fit(self, idx: np.ndarray) -> Any:
            seen.append((np.asarray(idx), np.array([])))
            return None

        def logits(self, net: Any, idx: np.ndarray) -> np.ndarray:
            seen[-1] = (seen[-1][0], np.asarray(idx))
            return np.tile([0.0, 1.0], (len(idx), 1))

    trainer = Recorder([None] * len(data), np.array([r.label for r in data]), None, None, argparse.Namespace())
    metrics, temperature = script.evaluate(trainer, data, 3, 0)
    assert len(seen) == 2 + 3 and temperature > 0
    for train, test in seen:
        assert len(test) and not set(groups[train]) & set(groups[test])
    # out of source: the JBB test trains on no JBB row and on no extra row answering a JBB request
    assert set(source[seen[0][1]]) == {"jbb"} and "jbb" not in set(source[seen[0][0]])
    assert not {"g0", "g1", "g2", "g3"} & set(groups[seen[0][0]])
    folds_tested = np.concatenate([t for _, t in seen[2:]])
    assert sorted(folds_tested) == sorted(np.where(np.isin(source, ["jbb", "harmbench"]))[0])
    assert set(metrics) == {
        "out_of_source_to_jbb",
        "out_of_source_to_harmbench",
        "grouped_3fold_jbb",
        "grouped_3fold_harmbench",
    }


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
