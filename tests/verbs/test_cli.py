"""The CLI end to end in subprocesses, including `kill -9` at random points followed by a resume."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import harmful_rows, store_contents, stored_generations, write_jsonl

CONFIG = """\
name: cli
datasets:
  - kind: jsonl
    params: {{path: data.jsonl}}
targets:
  - name: base
    kind: fake
    parser: plain
    params: {{default: "I cannot help with {{sample_id}}.", delay_s: {delay}, max_concurrency: 4}}
  - name: reasoner
    kind: fake
    base: base
    reasoning: true
    params: {{default: "<think>Plan {{sample_id}}</think>Sure: {{sample_id}}", delay_s: {delay}, max_concurrency: 4}}
judges:
  - kind: keyword
judge_cache: null
concurrency: 8
html_report: false
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "safemlrm", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


def setup_config(tmp_path: Path, n: int, delay: float) -> Path:
    write_jsonl(tmp_path / "data.jsonl", harmful_rows(n))
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG.format(delay=delay), encoding="utf-8")
    return config


def test_validate_list_and_dry_run(tmp_path: Path) -> None:
    config = setup_config(tmp_path, 5, 0.0)
    ok = cli("validate", str(config), cwd=tmp_path)
    assert ok.returncode == 0 and "valid" in ok.stdout
    listed = cli("list", "judges", cwd=tmp_path)
    assert "keyword" in listed.stdout
    plan = cli("run", str(config), "--out", "r", "--dry-run", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert "5 samples -> 5 probes" in plan.stdout and "target calls: 10" in plan.stdout
    assert not (tmp_path / "r" / "run.sqlite").exists()


def test_bad_config_gives_a_clear_error(tmp_path: Path) -> None:
    config = setup_config(tmp_path, 3, 0.0)
    config.write_text(config.read_text().replace("kind: keyword", "kind: keywrd"))
    result = cli("run", str(config), "--out", "r", cwd=tmp_path)
    assert result.returncode == 2
    assert "Did you mean 'keyword'" in result.stderr and "Traceback" not in result.stderr


def test_run_twice_makes_zero_calls_and_exports(tmp_path: Path) -> None:
    config = setup_config(tmp_path, 6, 0.0)
    first = cli("run", str(config), "--out", "r", "--no-progress", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = cli("run", str(config), "--out", "r", "--no-progress", cwd=tmp_path)
    assert "target calls 0 made, 12 from the store" in second.stdout
    assert "judge calls 0 made" in second.stdout
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    # Written by the second run's report stage, from the store: both runs, every record, this run's calls.
    assert [inv["status"] for inv in summary["run"]["invocations"]] == ["finished", "finished"]
    assert {label: t["generations"] for label, t in summary["targets"].items()} == {"base": 6, "reasoner": 6}
    assert summary["targets"]["reasoner"]["base"] == "base" and summary["errors"]["generation_errors"] == 0
    calls = summary["calls"]["this_invocation"]
    assert (calls["target_calls"], calls["target_cached"], calls["judge_calls"]) == (0, 12, 0)
    export = cli("export", "r", "--format", "jsonl", cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    rows = [json.loads(line) for line in (tmp_path / "r" / "export.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and {r["target"] for r in rows} == {"base", "reasoner"}
    assert all("score.whole.keyword" in r for r in rows)
    # the last lines: the headline judge, then how far its numbers can be trusted and how to do better,
    # from the record the judge stored (summary.json's `judges` block), for `run` and `report` alike
    record = summary["judges"]["keyword"]
    assert record["validation"]["status"] == "measured" and record["rates"]["reasoner"]["whole"]["n"] == 6
    last = second.stdout.strip().splitlines()
    assert last[-3].startswith("headline judge: keyword") and last[-2] == record["trust"]
    assert last[-1] == record["validation"]["advice"] and "kind: rubric" in last[-1]
    report = cli("report", "r", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert report.stdout.strip().splitlines()[-3:] == last[-3:]


@pytest.mark.slow
def test_kill_9_at_random_points_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    config = setup_config(reference_dir, 60, 0.0)
    assert cli("run", str(config), "--out", "r", "--no-progress", cwd=reference_dir).returncode == 0
    expected = store_contents(reference_dir / "r")

    work = tmp_path / "killed"
    work.mkdir()
    config = setup_config(work, 60, 0.05)
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    kills = 0
    for _ in range(3):
        # Kill once a random number of generations is stored, so every kill lands mid-run.
        stored = stored_generations(work / "r")
        threshold = stored + rng.randint(3, 25)
        proc = subprocess.Popen(
            [sys.executable, "-m", "safemlrm", "run", str(config), "--out", "r", "--no-progress"],
            cwd=work,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if stored_generations(work / "r") >= threshold:
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.02)
        proc.wait()
    assert kills == 3
    final = cli("run", str(config), "--out", "r", "--no-progress", cwd=work)
    assert final.returncode == 0, final.stderr
    # fake generations carry no timing, so contents must match exactly, key for key
    assert store_contents(work / "r") == expected


def test_prepare_model_refuses_a_model_that_is_not_gguf(tmp_path: Path) -> None:
    (tmp_path / "folder-model").mkdir()
    result = cli("prepare-model", str(tmp_path / "folder-model"), cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "not a GGUF model" in result.stderr


def test_prepare_model_keeps_a_complete_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safemlrm.targets import _gguf_cache as gguf_cache
    from safemlrm.targets._inprocess import resolve_model_source

    monkeypatch.setenv("SAFEMLRM_CACHE_DIR", str(tmp_path / "cache"))
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)  # not a loadable model: a second conversion would fail loudly
    folder = gguf_cache.copy_folder(resolve_model_source(str(gguf), None))
    folder.mkdir(parents=True)
    (folder / gguf_cache.COMPLETE_MARKER).write_text("done\n")
    result = cli("prepare-model", str(gguf), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"converted copy already in {folder}" in result.stdout
