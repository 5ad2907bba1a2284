"""Bad input through the CLI: each gets a clear error naming the place (exit 2, no traceback), and a run
that meets a bad row mid-way keeps what it computed before it."""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

CONFIG = """\
name: bad
datasets:
  - kind: {kind}
    params: {{path: {path}}}
targets:
  - name: model
    kind: fake
    parser: think_tags
    params: {{default: "<think>Plan {{sample_id}}</think>Sure: {{sample_id}}"}}
judges:
  - kind: keyword
judge_cache: null
concurrency: 4
html_report: false
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "safemlrm", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120
    )


def expect_clear_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


def rows(n: int, **extra: object) -> list[dict[str, object]]:
    return [
        {"id": f"s{i}", "instruction": f"do thing {i}", "prompt": f"please do thing {i}", **extra} for i in range(n)
    ]


def write_jsonl(path: Path, items: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
    return path


def config_for(tmp_path: Path, data: Path, kind: str = "jsonl") -> Path:
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG.format(kind=kind, path=data.name), encoding="utf-8")
    return config


def png_with_size(path: Path, width: int, height: int) -> Path:
    """A valid PNG header claiming a huge size (a decompression bomb), a few bytes on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


# ---------------------------------------------------------------- config


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("name: x\ndatasets:\n  - kind: jsonl\n    params: {path: [unclosed\n", encoding="utf-8")
    expect_clear_error(cli("run", str(config), "--out", "r", cwd=tmp_path), "run.yaml", "malformed YAML", "line")


def test_unknown_plugin_names_suggest_the_right_one(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", rows(2))
    config = config_for(tmp_path, data)
    config.write_text(config.read_text().replace("kind: fake", "kind: fak"))
    expect_clear_error(cli("run", str(config), "--out", "r", cwd=tmp_path), "fak", "fake")


def test_wrong_types_name_the_field_and_line(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", rows(2))
    config = config_for(tmp_path, data)
    config.write_text(config.read_text().replace("concurrency: 4", "concurrency: lots"))
    result = cli("run", str(config), "--out", "r", cwd=tmp_path)
    expect_clear_error(result, "concurrency (line 13)", "valid integer")


def test_wrong_plugin_param_type_names_the_param(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", rows(2))
    config = config_for(tmp_path, data)
    config.write_text(config.read_text().replace("params: {default:", "params: {delay_s: soon, default:"))
    expect_clear_error(cli("run", str(config), "--out", "r", cwd=tmp_path), "delay_s")


def test_missing_config_file(tmp_path: Path) -> None:
    expect_clear_error(cli("run", "nope.yaml", "--out", "r", cwd=tmp_path), "nope.yaml")


# ---------------------------------------------------------------- data rows


def test_broken_json_row_mid_way_keeps_what_was_computed(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    good = "".join(json.dumps(r) + "\n" for r in rows(30))
    data.write_text(good + '{"id": "s30", "instruction": "x", "prompt": \n' + json.dumps(rows(31)[-1]) + "\n")
    config = config_for(tmp_path, data)
    result = cli("run", str(config), "--out", "r", "--no-progress", cwd=tmp_path)
    expect_clear_error(result, "d.jsonl:31", "invalid JSON")
    conn = sqlite3.connect(tmp_path / "r" / "run.sqlite")
    generations = conn.execute("SELECT COUNT(*) FROM generations WHERE ok=1").fetchone()[0]
    judged = conn.execute("SELECT COUNT(DISTINCT generation_key) FROM scores").fetchone()[0]
    status = conn.execute("SELECT status FROM invocations").fetchone()[0]
    conn.close()
    assert generations == 30 and judged == 30 and status == "failed"
    # fixing the file resumes: the 30 rows are not generated again
    write_jsonl(data, rows(31))
    fixed = cli("run", str(config), "--out", "r", "--no-progress", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    assert "target calls 1 made, 30 from the store" in fixed.stdout


def test_json_row_that_is_not_an_object(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps(rows(1)[0]) + "\n[1, 2]\n")
    expect_clear_error(cli("run", str(config_for(tmp_path, data)), "--out", "r", cwd=tmp_path), "d.jsonl:2")


def test_row_with_a_wrong_field_type(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [*rows(2), {"id": "s2", "instruction": {"nested": 1}, "prompt": "p"}])
    result = cli("run", str(config_for(tmp_path, data)), "--out", "r", cwd=tmp_path)
    expect_clear_error(result, "d.jsonl:3", "instruction")


def test_broken_csv_row(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("id,instruction,prompt\ns0,do a,please a\ns1,do b,please b,EXTRA\n", encoding="utf-8")
    result = cli("run", str(config_for(tmp_path, data, "csv")), "--out", "r", cwd=tmp_path)
    expect_clear_error(result, "d.csv:3", "cells")


def test_csv_that_is_not_utf8(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_bytes(b"id,instruction,prompt\ns0,caf\xe9,p\n")
    expect_clear_error(cli("run", str(config_for(tmp_path, data, "csv")), "--out", "r", cwd=tmp_path), "d.csv", "UTF-8")


def test_missing_data_file(tmp_path: Path) -> None:
    config = config_for(tmp_path, tmp_path / "absent.jsonl")
    expect_clear_error(cli("run", str(config), "--out", "r", cwd=tmp_path), "absent.jsonl", "not found")


# ---------------------------------------------------------------- images


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "img"
    folder.mkdir()
    good = folder / "good.png"
    Image.new("RGB", (32, 32), (200, 10, 10)).save(good)
    corrupt = folder / "corrupt.png"
    corrupt.write_bytes(b"this is not an image at all" * 10)
    truncated = folder / "truncated.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(folder / "full.png")
    truncated.write_bytes((folder / "full.png").read_bytes()[:60])
    bomb = png_with_size(folder / "bomb.png", 40_000, 40_000)
    return {"good": good, "corrupt": corrupt, "truncated": truncated, "bomb": bomb}


@pytest.mark.parametrize(
    ("image", "fragments"),
    [
        ("img/missing.png", ("d.jsonl:2", "image not found")),
        ("img/corrupt.png", ("d.jsonl:2", "corrupt.png")),
        ("img/truncated.png", ("d.jsonl:2", "truncated.png")),
        ("img/bomb.png", ("d.jsonl:2", "bomb.png")),
        ("../outside.png", ("d.jsonl:2", "outside the dataset root")),
        ("/etc/passwd", ("d.jsonl:2", "outside the dataset root")),
    ],
)
def test_bad_images_are_named(tmp_path: Path, images: dict[str, Path], image: str, fragments: tuple[str, ...]) -> None:
    (tmp_path.parent / "outside.png").write_bytes(images["good"].read_bytes())
    data = write_jsonl(tmp_path / "d.jsonl", [rows(1, image="img/good.png")[0], {**rows(2)[1], "image": image}])
    expect_clear_error(cli("run", str(config_for(tmp_path, data)), "--out", "r", cwd=tmp_path), *fragments)


def test_validate_rejects_bad_config_without_running(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", rows(1))
    config = config_for(tmp_path, data)
    config.write_text(config.read_text().replace("kind: keyword", "kind: keyword\n    params: {bogus: 1}"))
    expect_clear_error(cli("validate", str(config), cwd=tmp_path), "bogus")
