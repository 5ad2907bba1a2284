"""Store additions for scale: the key filters never hide a stored row, and large runs stream."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from safemlrm.core.store import KeyFilter, RunStore, StoredRecords, load_run
from safemlrm.pipeline.runner import Pipeline
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


def _killed_invocation(run_dir: Path) -> None:
    """A process that starts an invocation of the run in ``run_dir`` and is killed with SIGKILL."""
    code = (
        "import sys, time\n"
        "from safemlrm.core.store import RunStore\n"
        "store = RunStore(sys.argv[1])\n"
        "config = store.invocations()[0]['config'] if store.invocations() else {}\n"
        "store.start_invocation('run', config, {})\n"
        "store.commit()\n"
        "print('started', flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"started"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL")
def test_a_killed_invocation_is_marked_killed_when_the_next_one_starts(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _killed_invocation(run_dir)
    store = RunStore(run_dir)
    try:
        # An invocation on another machine cannot be checked from here: it stays as it was.
        store.conn.execute(
            "INSERT INTO invocations (started, status, command, config, environment, pid, host) "
            "VALUES (0, 'running', 'run', '{}', '{}', 1, 'some-other-host')"
        )
        store.start_invocation("run", {}, {})
        statuses = [inv["status"] for inv in store.invocations()]
    finally:
        store.close()
    assert statuses == ["killed", "running", "running"]


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL")
def test_reports_show_a_killed_invocation(tmp_path: Path) -> None:
    from safemlrm.verbs import api

    data = write_jsonl(tmp_path / "d.jsonl", harmful_rows(2))
    run_dir = tmp_path / "run"
    asyncio.run(Pipeline(fake_config(data), run_dir, base_dir=tmp_path, progress=False, reports=False).run())
    _killed_invocation(run_dir)
    api.report(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert [inv["status"] for inv in summary["run"]["invocations"]] == ["finished", "killed"]
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "| 2 | run | killed |" in report and "running" not in report


def test_judge_info_keeps_its_validation_record_and_reads_older_rows(tmp_path: Path) -> None:
    from safemlrm.core.records import JudgeInfo
    from safemlrm.core.trust import Agreement, JudgeValidation

    record = JudgeValidation(
        status="measured",
        agreement=(Agreement(set="S", method="CV", n=10, accuracy=0.8, accuracy_ci95=(0.5, 0.9)),),
        note="held out",
    )
    store = RunStore(tmp_path)
    store.put_judge(JudgeInfo("offline", "offline", {"kind": "offline"}, record))
    store.put_judge(JudgeInfo("kw", "keyword"))
    # a row written before judges had records
    store.conn.execute(
        "INSERT OR REPLACE INTO judges VALUES (?, ?)",
        ("old", json.dumps({"label": "old", "kind": "rubric", "identity": {"kind": "rubric"}})),
    )
    store.commit()
    infos = RunStore(tmp_path).judge_infos()
    assert infos["offline"].validation == record and infos["offline"].identity == {"kind": "offline"}
    assert infos["kw"].validation is None and infos["old"].validation is None and infos["old"].kind == "rubric"
