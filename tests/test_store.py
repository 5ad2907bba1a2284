"""Store additions for scale: the key filters never hide a stored row, and large runs stream."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from safemlrm.pipeline.runner import Pipeline
from safemlrm.store import KeyFilter, RunStore, StoredRecords, load_run
from tests.helpers import fake_config, harmful_rows, write_jsonl


def test_key_filter_has_no_false_negatives_and_few_false_positives() -> None:
    keys = KeyFilter(bits_log2=16)
    added = [secrets.token_hex(16) for _ in range(2000)]
    for key in added:
        keys.add(key)
    assert all(key in keys for key in added)
    others = [secrets.token_hex(16) for _ in range(2000)]
    assert sum(key in keys for key in others) < 200  # about 0.4% expected at this load


def test_streamed_records_equal_the_list(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", harmful_rows(7))
    run_dir = tmp_path / "run"
    asyncio.run(Pipeline(fake_config(data), run_dir, base_dir=tmp_path, progress=False, reports=False).run())
    listed = load_run(run_dir, stream=False)
    streamed = load_run(run_dir, stream=True)
    assert isinstance(listed.records, list) and isinstance(streamed.records, StoredRecords)
    assert len(streamed.records) == len(listed.records) == 14
    assert list(streamed.records) == listed.records
    assert list(streamed.records) == listed.records  # a second pass reads again
    assert streamed.records[3] == listed.records[3] and streamed.records[-1] == listed.records[-1]
    assert list(streamed.records[2:5]) == listed.records[2:5]
    assert streamed.score_rows() == listed.score_rows()


def test_stored_rows_are_found_after_a_reopen(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", harmful_rows(3))
    run_dir = tmp_path / "run"
    asyncio.run(Pipeline(fake_config(data), run_dir, base_dir=tmp_path, progress=False, reports=False).run())
    store = RunStore(run_dir)
    try:
        keys = [k for (k,) in store.conn.execute("SELECT key FROM generations")]
        assert keys and all(store.get_generation(k) is not None for k in keys)
        assert store.get_generation("0" * 32) is None
        judgement_keys = [k for (k,) in store.conn.execute("SELECT key FROM judgements")]
        assert all(store.get_judgement(k) is not None for k in judgement_keys)
    finally:
        store.close()
