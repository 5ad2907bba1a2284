"""A run exported as inspect_ai .eval logs reads back with inspect_ai's own log reader."""

from __future__ import annotations

import asyncio
import base64
import math
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from tests.helpers import fake_config, harmful_rows, write_jsonl

from safemlrm.core.store import load_run
from safemlrm.core.types import Part
from safemlrm.pipeline.runner import Pipeline
from safemlrm.testing.synthetic import synthetic_run
from safemlrm.verbs.export import export_run

inspect_log = pytest.importorskip(
    "inspect_ai.log", reason="needs inspect_ai: pip install 'safemlrm[inspect]'"
)
inspect_model = pytest.importorskip("inspect_ai.model")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    rows = harmful_rows(6)
    for i, row in enumerate(rows[:3]):
        Image.new("RGB", (6, 6), (0, i * 60, 0)).save(tmp_path / f"img{i}.png")
        row["image"] = f"img{i}.png"
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    config = fake_config(data)
    targets = [t.model_dump() for t in config.targets]
    targets[1]["params"]["fail_ids"] = ["s5"]  # the reasoner fails on one sample
    config = fake_config(
        data, targets=targets, attacks=[{"kind": "vanilla", "params": {"keep_sample_images": True}}]
    )
    out = tmp_path / "run"
    asyncio.run(Pipeline(config, out, base_dir=tmp_path, progress=False, reports=False).run())
    return out


def read_logs(folder: Path) -> dict[str, Any]:
    logs = [
        inspect_log.read_eval_log(info.name, resolve_attachments=True)
        for info in inspect_log.list_eval_logs(str(folder))
    ]
    return {log.eval.metadata["safemlrm_target"]["label"]: log for log in logs}


def test_export_inspect_reads_back_with_inspect_ai(run_dir: Path, tmp_path: Path) -> None:
    folder = export_run(run_dir, "inspect", tmp_path / "logs")
    logs = read_logs(folder)
    assert set(logs) == {"base", "reasoner"}
    run = load_run(run_dir)
    log = logs["reasoner"]
    assert log.eval.model == "safemlrm/reasoner" and log.eval.task == "safemlrm/t"
    assert len(log.samples) == 6 and log.status == "error"  # one generation failed

    by_sample = {s.metadata["sample_id"]: s for s in log.samples}
    records = {r.sample.id: r for r in run.records if r.generation.target == "reasoner"}
    for sample_id, sample in by_sample.items():
        record = records[sample_id]
        assert sample.target == record.sample.instruction
        assert sample.metadata["probe_key"] == record.probe.key
        if record.generation.error:
            assert sample.error is not None and sample.error.message == "scripted failure"
            assert not sample.scores
            continue
        reply = sample.messages[-1]
        assert isinstance(reply, inspect_model.ChatMessageAssistant)
        reasoning = [c for c in reply.content if isinstance(c, inspect_model.ContentReasoning)]
        answers = [c for c in reply.content if isinstance(c, inspect_model.ContentText)]
        assert [c.reasoning for c in reasoning] == [record.parsed.reasoning]
        assert [c.text for c in answers] == [record.parsed.answer]
        assert set(sample.scores) == {"keyword/reasoning", "keyword/answer", "keyword/whole"}
        for (part, judge), judgement in record.judgements.items():
            score = sample.scores[f"{judge}/{part.value}"]
            assert score.value == judgement.score
            assert score.explanation == judgement.rationale
            assert score.answer == record.parsed.text(part)
        assert sample.metadata["raw_output"] == record.generation.text

    # Images travel inside the log: the data URI decodes to the image file's bytes.
    with_image = by_sample["s0"]
    images = [c for c in with_image.input[0].content if isinstance(c, inspect_model.ContentImage)]
    assert len(images) == 1
    header, encoded = images[0].image.split(",", 1)
    assert header == "data:image/png;base64"
    assert base64.b64decode(encoded) == (run_dir.parent / "img0.png").read_bytes()

    # Base model (plain parser): no reasoning part in its messages.
    base_reply = logs["base"].samples[0].messages[-1]
    assert not any(isinstance(c, inspect_model.ContentReasoning) for c in base_reply.content)
    scores = {s.name: s for s in logs["base"].results.scores}
    assert scores["keyword/answer"].metrics["mean"].value == 0.0  # the base model always refuses


def test_failed_judgements_stay_nan(tmp_path: Path) -> None:
    from safemlrm.interop.inspect_log import eval_log

    run = synthetic_run(per_scenario=2, n_benign=4, nan_rate=0.3, run_dir=str(tmp_path))
    target = run.targets[0]
    expected = sum(
        math.isnan(j.score)
        for r in run.records
        if r.generation.target == target.label
        for j in r.judgements.values()
    )
    assert expected > 0
    path = tmp_path / "x.eval"
    inspect_log.write_eval_log(eval_log(run, target, embed_images=False), path, format="eval")
    log = inspect_log.read_eval_log(str(path))
    values = [s.value for sample in log.samples for s in (sample.scores or {}).values()]
    assert sum(isinstance(v, float) and math.isnan(v) for v in values) == expected
    parts = {s.metadata["part"] for sample in log.samples for s in (sample.scores or {}).values()}
    assert parts <= {p.value for p in Part}
