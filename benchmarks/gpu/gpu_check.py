"""GPU check of the in-process targets on a random-weight model of real size: hf batch 1 vs 16, and vLLM.

    bash benchmarks/gpu/run_gpu_check.sh            # on a machine with one GPU (writes to $OUT)
    python benchmarks/gpu/gpu_check.py --out DIR [--max-new-tokens 128] [--skip-vllm]

Nothing is downloaded. The model is Qwen2.5-VL-7B-Instruct's architecture, built from its published
config.json values (28 text layers of width 3584, GQA 28/4 heads, 32-layer 1280-wide vision tower,
vocabulary 152,064: about 8.3 B parameters) with random bfloat16 weights; the tokenizer is a small
BPE trained on the spot with Qwen's special tokens, so prompts are short and outputs are gibberish,
which does not change the cost of a decoding step. Every probe carries a 448x448 image (256 image
tokens after Qwen's 2x2 merge).

1. ``hf``: the model is built on the GPU and wrapped with ``HFTarget.from_loaded``; probes are sent as
   concurrent ``generate([probe])`` calls, as the pipeline does, so the MicroBatcher forms the batches.
   Batch size 1 against 16: generated tokens per second.
2. ``vllm``: ``vllm.LLM`` with ``load_format="dummy"`` (random weights, same architecture) through the
   ``vllm`` target, at batch sizes 1, 16 and 64 per ``llm.chat`` call. Skipped with a message when
   vLLM is not importable.

Results (tokens/s per setting, ratios, versions, GPU name) go to ``OUT/gpu_check.json``, rewritten
after each step so a run cut short still returns what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from safemlrm.core.context import PluginContext  # noqa: E402
from safemlrm.core.hashing import content_hash  # noqa: E402
from safemlrm.core.types import ImagePart, ImageRef, Message, Probe, TextPart  # noqa: E402

QUESTIONS = (
    "Describe the image in detail, then explain what the text in it asks for.",
    "What is written in this image? Answer step by step.",
    "List the objects you can see and what they might be used for.",
    "Read the phrase in the image and write three sentences about it.",
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Results:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.path.write_text(json.dumps(self.data, indent=2, default=str) + "\n")


def make_probes(folder: Path, count: int) -> list[Probe]:
    from PIL import Image, ImageDraw

    probes = []
    for i in range(count):
        path = folder / f"image-{i}.png"
        image = Image.new("RGB", (448, 448), (255 - 5 * i % 255, 240, 230))
        draw = ImageDraw.Draw(image)
        for line in range(6):
            draw.text((20, 40 + 60 * line), f"Step {line + 1}: phrase number {i}", fill=(0, 0, 0))
        image.save(path)
        ref = ImageRef(path=str(path), sha256=content_hash(str(path)))
        text = f"{QUESTIONS[i % len(QUESTIONS)]} (request {i})"
        probes.append(
            Probe(
                sample_key=content_hash(i),
                sample_id=str(i),
                attack="gpu-check",
                messages=(Message(role="user", content=(ImagePart(image=ref), TextPart(text=text))),),
            )
        )
    return probes


async def timed(target: Any, probes: list[Probe]) -> dict[str, Any]:
    batcher = target._batcher
    batcher.batch_size_counts.clear()
    start = time.perf_counter()
    results = await asyncio.gather(*(target.generate([probe]) for probe in probes))
    wall = time.perf_counter() - start
    generations = [result[0] for result in results]
    errors = [g.error for g in generations if g.error]
    tokens = sum(g.usage.get("completion_tokens", 0) for g in generations)
    prompt_tokens = [g.usage.get("prompt_tokens", 0) for g in generations if g.ok]
    return {
        "batch_size": target.max_batch_size,
        "probes": len(probes),
        "wall_s": round(wall, 2),
        "completion_tokens": tokens,
        "tokens_per_s": round(tokens / wall, 1) if wall else None,
        "prompt_tokens_mean": round(sum(prompt_tokens) / len(prompt_tokens), 1) if prompt_tokens else None,
        "batches": sorted(batcher.batch_size_counts.elements(), reverse=True),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def environment() -> dict[str, Any]:
    import torch
    import transformers

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
    try:
        import vllm

        info["vllm"] = vllm.__version__
    except Exception as exc:  # vLLM missing or broken: the vLLM step is skipped
        info["vllm"] = f"not importable: {type(exc).__name__}: {exc}"
    return info


async def check_hf(folder: Path, probes: list[Probe], args: argparse.Namespace, results: Results) -> None:
    import torch
    from transformers import AutoConfig, Qwen2_5_VLForConditionalGeneration

    from safemlrm.targets.hf import HFTarget

    config = AutoConfig.from_pretrained(str(folder))
    log(f"building the random-weight model on {args.device}")
    start = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(args.device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.eval()
    parameters = sum(p.numel() for p in model.parameters())
    build_s = time.perf_counter() - start
    log(f"built {parameters / 1e9:.2f} B parameters in {build_s:.1f} s")
    loader = HFTarget(HFTarget.Params(model=str(folder)), PluginContext(label="loader"))
    processor = loader._load_processor({"trust_remote_code": False})
    log(f"processor: {type(processor).__name__}")
    section: dict[str, Any] = {
        "model": f"Qwen2.5-VL-7B-Instruct architecture{' (tiny widths)' if args.tiny else ''}, random bf16 weights",
        "parameters_billion": round(parameters / 1e9, 3),
        "build_s": round(build_s, 1),
        "processor": type(processor).__name__,
        "max_new_tokens": args.max_new_tokens,
        "runs": [],
    }
    results.set("hf", section)
    targets = {}
    for batch_size in (1, args.batch_size):
        params = HFTarget.Params(
            model="random/Qwen2.5-VL-7B-Instruct",
            batch_size=batch_size,
            max_new_tokens=args.max_new_tokens,
            max_wait_ms=50,
            share_model=False,
            device=args.device,
        )
        targets[batch_size] = HFTarget.from_loaded(
            model, processor, params, PluginContext(label=f"hf-{batch_size}"), model_class="image_text"
        )
    warm = HFTarget.from_loaded(
        model,
        processor,
        HFTarget.Params(model="random/Qwen2.5-VL-7B-Instruct", max_new_tokens=8, batch_size=4, share_model=False),
        PluginContext(label="warm"),
        model_class="image_text",
    )
    await timed(warm, probes[:4])
    log("warm-up done")
    single = await timed(targets[1], probes[: args.single_probes])
    log(f"hf batch 1: {single}")
    section["runs"].append(single)
    results.set("hf", section)
    batched = await timed(targets[args.batch_size], probes[: args.batched_probes])
    log(f"hf batch {args.batch_size}: {batched}")
    section["runs"].append(batched)
    if single["tokens_per_s"] and batched["tokens_per_s"]:
        section["ratio_batched_over_single"] = round(batched["tokens_per_s"] / single["tokens_per_s"], 2)
    if torch.cuda.is_available():
        section["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    results.set("hf", section)
    del model, targets, warm, loader
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


async def check_vllm(folder: Path, probes: list[Probe], args: argparse.Namespace, results: Results) -> None:
    from safemlrm.targets.vllm import VLLMTarget

    section: dict[str, Any] = {
        "model": "Qwen2.5-VL-7B-Instruct architecture, load_format=dummy (random weights)",
        "max_new_tokens": args.max_new_tokens,
        "runs": [],
    }
    results.set("vllm", section)

    def params(batch_size: int) -> VLLMTarget.Params:
        return VLLMTarget.Params(
            model=str(folder),
            batch_size=batch_size,
            max_new_tokens=args.max_new_tokens,
            max_wait_ms=50,
            dtype="bfloat16",
            max_model_len=4096,
            limit_mm_per_prompt={"image": 1},
            gpu_memory_utilization=args.gpu_memory_utilization,
            engine_kwargs={"load_format": "dummy"},
        )

    log("starting vLLM (dummy weights)")
    start = time.perf_counter()
    first = VLLMTarget(params(1), PluginContext(label="vllm-1"))
    engine = await asyncio.to_thread(first._engine)
    section["start_s"] = round(time.perf_counter() - start, 1)
    log(f"vLLM started in {section['start_s']} s")
    results.set("vllm", section)
    await timed(first, probes[:2])  # warm-up
    for batch_size in args.vllm_batch_sizes:
        target = first if batch_size == 1 else VLLMTarget(params(batch_size), PluginContext(label=f"vllm-{batch_size}"))
        target._llm = engine  # one engine, several batch sizes
        count = args.single_probes * 2 if batch_size == 1 else max(batch_size, args.batched_probes)
        run = await timed(target, probes[:count])
        log(f"vllm batch {batch_size}: {run}")
        section["runs"].append(run)
        results.set("vllm", section)
    by_size = {run["batch_size"]: run["tokens_per_s"] for run in section["runs"]}
    if by_size.get(1):
        section["ratios_over_batch_1"] = {str(k): round(v / by_size[1], 2) for k, v in by_size.items() if v}
    results.set("vllm", section)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--single-probes", type=int, default=4, help="probes timed at batch size 1")
    parser.add_argument("--batched-probes", type=int, default=32, help="probes timed at the batch size")
    parser.add_argument("--vllm-batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 64])
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.85)
    parser.add_argument("--skip-hf", action="store_true")
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--tiny", action="store_true", help="a tiny model of the same architecture (a dry run of this script on CPU)"
    )
    parser.add_argument("--skip-vllm", action="store_true")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = Results(out / "gpu_check.json")
    env = environment()
    results.set("environment", env)
    log(f"environment: {env}")
    if not env["cuda_available"] and args.device.startswith("cuda"):
        log("no CUDA device: nothing to check (--tiny --device cpu runs a dry run)")
        return 1

    from safemlrm.testing.tiny_models import QWEN2_5_VL_7B_CONFIG, TINY_QWEN2_5_VL_CONFIG, write_qwen2_5_vl_folder

    work = Path(tempfile.mkdtemp(prefix="safemlrm-gpu-check-"))
    folder = work / "qwen2.5-vl-7b-random"
    write_qwen2_5_vl_folder(folder, TINY_QWEN2_5_VL_CONFIG if args.tiny else QWEN2_5_VL_7B_CONFIG)
    probes = make_probes(work, max(args.batched_probes, max(args.vllm_batch_sizes), args.single_probes * 2))
    failed = False
    if not args.skip_hf:
        try:
            await check_hf(folder, probes, args, results)
        except Exception as exc:
            failed = True
            log(f"hf check failed: {exc}")
            results.set("hf_error", traceback.format_exc())
    if args.skip_vllm:
        results.set("vllm", {"skipped": "--skip-vllm"})
    elif not str(env.get("vllm", "")).split(".")[0].isdigit():
        log(f"vLLM step skipped: vllm {env['vllm']}")
        results.set("vllm", {"skipped": f"vllm {env['vllm']}"})
    else:
        try:
            await check_vllm(folder, probes, args, results)
        except Exception as exc:
            failed = True
            log(f"vllm check failed: {exc}")
            results.set("vllm_error", traceback.format_exc())
    log(f"results in {results.path}")
    print(json.dumps(results.data, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
