"""Multi-GPU run on Ray: one `hf` (or `vllm`) model replica per GPU, against one replica on one GPU.

Ready to run on a machine (or a Ray cluster) with GPUs and the model weights at hand:

    pip install 'safemlrm[hf,ray]'                 # and torch for your CUDA
    ray start --head --num-gpus=8                   # or skip: a local Ray instance is started
    python benchmarks/gpu/ray_multi_gpu.py --model Qwen/Qwen2.5-VL-7B-Instruct --probes 256

It builds a run config (the bundled demo benchmark's prompts, repeated to `--probes` probes, each
with an image of its key phrase; the `keyword` judge, which is cheap), runs it once with
`executor: local` on one GPU and once with `executor: ray` and one actor per GPU
(`--gpus-per-actor 0.5` puts two replicas on each GPU), checks that both runs stored the same
generations, and writes the timings to benchmarks/results/ray_multi_gpu.json. With `--model tiny`
it builds a random-weight Qwen2.5-VL (no download), which checks the wiring on any GPU machine in a
minute.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from safemlrm.core.config import RunConfig
from safemlrm.core.store import STORE_FILE
from safemlrm.verbs.api import run

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"


def demo_rows(count: int, folder: Path) -> Path:
    """The bundled demo benchmark's rows, repeated with new ids up to `count`, each with an image."""
    from importlib import resources

    from PIL import Image, ImageDraw

    demo = resources.files("safemlrm") / "data" / "demo" / "benchmark.jsonl"
    rows = [json.loads(line) for line in demo.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for i in range(count):
        row = dict(rows[i % len(rows)])
        row["id"] = f"{row['id']}-{i}"
        row["instruction"] = f"{row['instruction']} (variant {i})"  # distinct texts: no judge-cache hits
        image = Image.new("RGB", (448, 448), (255, 255, 255))
        ImageDraw.Draw(image).text((16, 200), f"{row.get('key_phrase', '')} #{i}", fill=(0, 0, 0))
        image.save(folder / f"img{i}.png")
        row["image"] = f"img{i}.png"
        out.append(row)
    path = folder / "probes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in out), encoding="utf-8")
    return path


def make_config(args: argparse.Namespace, data: Path, model: str, executor: str, actors: int) -> RunConfig:
    params: dict[str, Any] = {
        "model": model,
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
    }
    if args.kind == "hf":
        params["dtype"] = "bfloat16" if model != "tiny" else "float32"
    return RunConfig.model_validate(
        {
            "name": "ray-multi-gpu",
            "datasets": [{"kind": "jsonl", "params": {"path": str(data)}}],
            "attacks": [{"kind": "vanilla", "params": {"keep_sample_images": True}}],
            "targets": [{"name": "model", "kind": args.kind, "parser": "think_tags", "params": params}],
            "judges": [{"kind": "keyword"}],
            "judge_cache": None,
            "html_report": False,
            "executor": executor,
            "ray": {
                "address": args.address,
                "actors": actors,
                "num_gpus": args.gpus_per_actor if executor == "ray" else 0,
                "num_cpus": 1,
            },
        }
    )


def generations(run_dir: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(run_dir / STORE_FILE) as conn:
        rows = conn.execute("SELECT probe_key, json_extract(data, '$.text') FROM generations").fetchall()
    return sorted((str(k), str(t)) for k, t in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="tiny", help="hub id or folder; 'tiny' = a random-weight Qwen2.5-VL"
    )
    parser.add_argument("--kind", default="hf", choices=("hf", "vllm"))
    parser.add_argument("--probes", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--gpus-per-actor", type=float, default=1.0)
    parser.add_argument(
        "--address", default=None, help="Ray address (auto, ray://head:10001); default: local"
    )
    parser.add_argument("--skip-local", action="store_true", help="only the Ray run")
    args = parser.parse_args()

    import ray

    ray.init(address=args.address, include_dashboard=False, logging_level="WARNING")
    gpus = float(ray.cluster_resources().get("GPU", 0))
    if gpus < args.gpus_per_actor:
        raise SystemExit(
            f"the Ray cluster has {gpus:g} GPUs; this script needs GPUs (ray start --num-gpus=N)"
        )
    actors = int(gpus // args.gpus_per_actor)
    result: dict[str, Any] = {"model": args.model, "kind": args.kind, "gpus": gpus, "actors": actors}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = args.model
        if model == "tiny":
            from safemlrm.testing.tiny_models import build_tiny_qwen2_5_vl

            model = str(build_tiny_qwen2_5_vl(folder / "tiny-vlm"))
        data = demo_rows(args.probes, folder)
        runs = [("ray", actors)] + ([] if args.skip_local else [("local", 1)])
        for executor, count in runs:
            config = make_config(args, data, model, executor, count)
            started = time.perf_counter()
            outcome = run(config, folder / executor)
            wall = time.perf_counter() - started
            c = outcome.counters
            result[executor] = {
                "wall_s": round(wall, 2),
                "probes_per_s": round(c.target_calls / wall, 3),
                "target_calls": c.target_calls,
                "target_errors": c.target_errors,
            }
            print(f"{executor}: {c.target_calls} generations in {wall:.1f} s ({c.target_errors} errors)")
        if not args.skip_local:
            result["same_generations"] = generations(folder / "ray") == generations(folder / "local")
            result["speedup"] = round(result["local"]["wall_s"] / result["ray"]["wall_s"], 2)
            same = result["same_generations"]
            print(f"speed-up with {actors} actors: {result['speedup']}x; same outputs: {same}")
    ray.shutdown()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "ray_multi_gpu.json"
    path.write_text(json.dumps({"benchmark": "ray_multi_gpu", **result}, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
