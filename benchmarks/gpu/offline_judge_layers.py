"""Experiment: which part of MiniLM to fine-tune for the `offline` judge, measured on a lent GPU.

The shipped judge (scripts/train_cross_encoder.py) trains MiniLM's top two layers and a head on this
project's 2-core CPU: more than that cannot be measured here in time, and more than two int8 layers
would not fit the 5 MB file budget. This measures, on the same rows, the same request-grouped 5 folds
and the same two out-of-source splits, what the other options would buy:

- `top2`: the shipped recipe (layers 5-6 + head; lr 1e-4 / head 1e-3, 3 epochs, batches of 32), in
  float/bf16 on the GPU instead of int8 lower layers: calibrates the GPU figures against the CPU ones;
- `lora_all`: LoRA (rank 16) on every Linear of all six layers + the head: an adapter of ~1.3 MB that
  would fit the budget;
- `top2_lora_lower`: the top two layers as shipped plus LoRA on the lower four;
- `full`: every weight (about 90 MB: not shippable; the ceiling of this backbone on these rows).

    # here (CPU): tokenized rows, folds and an fp16 copy of the packaged encoder into .offjudge_gpu/
    .venv/bin/python benchmarks/gpu/offline_judge_layers.py prepare [--data ../shared/data]
    # on the GPU machine (carry .offjudge_gpu; needs only torch, numpy and transformers there):
    python3 benchmarks/gpu/offline_judge_layers.py train [--budget-s 420]

`train` writes $OUT/offline_judge_layers.json after each configuration (configurations that would
start after --budget-s are skipped and listed). Results: benchmarks/results/offline_judge_layers.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".offjudge_gpu"  # git-ignored
DEV = ("jbb", "harmbench")
FOLDS = 5
MAX_LENGTH = 256


def prepare(data: Path) -> None:
    """Rows, token ids and splits exactly as scripts/train_cross_encoder.py builds them (no hidden share)."""
    import shutil

    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    sys.path.insert(0, str(ROOT / "scripts"))
    import train_offline_judge as linear

    from safemlrm.judges._cross_encoder import pair_input_ids
    from safemlrm.judges._encoder import model_dir

    rows = linear.load_harm_rows(data)
    rows += linear.synthetic_refusals(rows, 0, 200, 0)
    rows += linear.load_extra_harm_rows(data, linear.DEFAULT_EXTRAS, 12, 0)
    rows = linear.link_to_dev_requests(rows, DEV)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir()), local_files_only=True)
    ids, types, offsets = [], [], [0]
    for row in rows:
        i, t = pair_input_ids(tokenizer, row.instruction, row.response, MAX_LENGTH)
        ids += i
        types += t
        offsets.append(len(ids))
    source = np.array([r.source for r in rows])
    groups = np.array([r.group for r in rows])
    _, group_codes = np.unique(groups, return_inverse=True)
    # Splits as train_cross_encoder.evaluate() makes them: out of source, then the grouped folds.
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for test_src in DEV:
        test = np.where(source == test_src)[0]
        splits[f"oos_{test_src}"] = (np.where((source != test_src) & ~np.isin(groups, groups[test]))[0], test)
    evaluable = np.where(np.isin(source, DEV))[0]
    for fold, held in enumerate(linear.grouped_folds([groups[i] for i in evaluable], FOLDS, 0)):
        test = evaluable[held]
        splits[f"fold{fold}"] = (np.where(~np.isin(groups, groups[test]))[0], test)
    WORK.mkdir(exist_ok=True)
    np.savez_compressed(
        WORK / "rows.npz",
        ids=np.array(ids, dtype=np.uint16),
        types=np.array(types, dtype=np.uint8),
        offsets=np.array(offsets, dtype=np.int64),
        labels=np.array([r.label for r in rows], dtype=np.int64),
        source=source,
        groups=group_codes,
        **{f"train_{k}": v[0] for k, v in splits.items()},
        **{f"test_{k}": v[1] for k, v in splits.items()},
    )
    (WORK / "model").mkdir(exist_ok=True)
    for f in model_dir().iterdir():
        if f.is_file() and f.name.endswith(".json"):
            shutil.copy(f, WORK / "model" / f.name)
    weights = load_file(str(model_dir() / "model.safetensors"))
    save_file({k: v.half() for k, v in weights.items()}, str(WORK / "model" / "model.safetensors"))
    print(f"{len(rows)} rows, {len(ids)} tokens, splits {sorted(splits)} -> {WORK}")


CONFIGS: dict[str, dict[str, Any]] = {
    "top2": {"train_layers": (4, 5), "lora_layers": (), "lr": 1e-4},
    "lora_all": {"train_layers": (), "lora_layers": (0, 1, 2, 3, 4, 5), "lr": 5e-4},
    "top2_lora_lower": {"train_layers": (4, 5), "lora_layers": (0, 1, 2, 3), "lr": 1e-4, "lora_lr": 5e-4},
    "full": {"train_layers": "all", "lora_layers": (), "lr": 5e-5},
    "lora_all_e6": {"train_layers": (), "lora_layers": (0, 1, 2, 3, 4, 5), "lr": 5e-4, "epochs": 6},
    "lora_all_lr1e-3": {"train_layers": (), "lora_layers": (0, 1, 2, 3, 4, 5), "lr": 1e-3},
}


def train(budget_s: float, smoke: bool, names: list[str], seeds: list[int]) -> None:
    import torch
    from transformers import AutoModel

    torch.backends.cuda.matmul.allow_tf32 = True
    out = Path(os.environ.get("OUT", "/tmp"))
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    d = np.load(WORK / "rows.npz")
    offsets, labels, source = d["offsets"], d["labels"], d["source"]
    ids = [d["ids"][offsets[i] : offsets[i + 1]].astype(np.int64) for i in range(len(labels))]
    types = [d["types"][offsets[i] : offsets[i + 1]].astype(np.int64) for i in range(len(labels))]
    split_names = [k[len("train_") :] for k in d.files if k.startswith("train_")]
    splits = {k: (d[f"train_{k}"], d[f"test_{k}"]) for k in split_names}
    if smoke:  # a few rows per split, one epoch: checks the code path on a CPU
        rng = np.random.default_rng(0)
        splits = {k: (rng.choice(a, 96, replace=False), b[:32]) for k, (a, b) in list(splits.items())[:3]}

    class LoRALinear(torch.nn.Module):  # type: ignore[misc]
        def __init__(self, base: Any, rank: int = 16, alpha: float = 32.0) -> None:
            super().__init__()
            self.base = base
            self.a = torch.nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(base.in_features))
            self.b = torch.nn.Parameter(torch.zeros(base.out_features, rank))
            self.scale = alpha / rank

        def forward(self, x: Any) -> Any:
            return (
                self.base(x) + (torch.nn.functional.dropout(x, 0.1, self.training) @ self.a.T @ self.b.T) * self.scale
            )

    def build(cfg: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
        bert = AutoModel.from_pretrained(str(WORK / "model"), dtype=torch.float32, attn_implementation="sdpa")
        for p in bert.parameters():
            p.requires_grad = False
        layers = bert.encoder.layer
        trained = range(len(layers)) if cfg["train_layers"] == "all" else cfg["train_layers"]
        full_params = []
        if cfg["train_layers"] == "all":
            for p in bert.parameters():
                p.requires_grad = True
            full_params = list(bert.parameters())
        else:
            for k in trained:
                for p in layers[k].parameters():
                    p.requires_grad = True
                    full_params.append(p)
        lora_params = []
        for k in cfg["lora_layers"]:
            targets = [
                (parent, name, child)
                for parent in list(layers[k].modules())
                for name, child in parent.named_children()
                if isinstance(child, torch.nn.Linear)
            ]
            for parent, name, child in targets:
                wrapped = LoRALinear(child)
                setattr(parent, name, wrapped)
                lora_params += [wrapped.a, wrapped.b]
        head = torch.nn.Linear(bert.config.hidden_size, 2)
        net = torch.nn.ModuleDict({"bert": bert, "head": head}).to(dev)
        groups = [{"params": [p for p in full_params], "lr": cfg["lr"]}] if full_params else []
        if lora_params:
            groups.append({"params": lora_params, "lr": cfg.get("lora_lr", cfg["lr"])})
        groups.append({"params": list(head.parameters()), "lr": 1e-3})
        return net, groups

    def batch(idx: list[int]) -> tuple[Any, Any, Any]:
        n = max(len(ids[i]) for i in idx)
        x = np.zeros((len(idx), n), dtype=np.int64)
        t = np.zeros_like(x)
        m = np.zeros_like(x)
        for j, i in enumerate(idx):
            x[j, : len(ids[i])], t[j, : len(ids[i])], m[j, : len(ids[i])] = ids[i], types[i], 1
        return (torch.from_numpy(x).to(dev), torch.from_numpy(t).to(dev), torch.from_numpy(m).to(dev))

    def forward(net: Any, x: Any, t: Any, m: Any) -> Any:
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=dev == "cuda"):
            h = net["bert"](input_ids=x, token_type_ids=t, attention_mask=m).last_hidden_state
        w = m.unsqueeze(-1).float()
        pooled = (h.float() * w).sum(1) / w.sum(1).clamp(min=1e-9)
        return net["head"](torch.nn.functional.dropout(pooled, 0.1, net.training))

    def chunks(idx: np.ndarray, size: int, rng: np.random.Generator | None) -> list[list[int]]:
        ordered = sorted((int(i) for i in idx), key=lambda i: len(ids[i]))
        parts = [ordered[s : s + size] for s in range(0, len(ordered), size)]
        if rng is not None:
            rng.shuffle(parts)  # type: ignore[arg-type]
        return parts

    def fit_predict(
        cfg: dict[str, Any], train_idx: np.ndarray, test_idx: np.ndarray, epochs: int, seed: int
    ) -> np.ndarray:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        net, groups = build(cfg)
        net.train()
        optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
        steps = epochs * math.ceil(len(train_idx) / 32)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / (0.1 * steps)) * max(0.0, (steps - s) / steps)
        )
        y = torch.from_numpy(labels).to(dev)
        for _ in range(epochs):
            for part in chunks(train_idx, 32, rng):
                loss = torch.nn.functional.cross_entropy(forward(net, *batch(part)), y[part])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
        net.eval()
        pred = np.zeros(len(labels), dtype=np.int64)
        with torch.inference_mode():
            for part in chunks(test_idx, 128, None):
                pred[part] = forward(net, *batch(part)).argmax(-1).cpu().numpy()
        return pred[test_idx]

    # Not train_offline_judge.agreement: the GPU machine runs this file without safemlrm or scripts/.
    def agreement(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
        pos, neg = truth == 1, truth == 0
        return {
            "n": len(truth),
            "accuracy": round(float((pred == truth).mean()), 4),
            "false_negative_rate": round(float((pred[pos] == 0).mean()), 4) if pos.any() else None,
            "false_positive_rate": round(float((pred[neg] == 1).mean()), 4) if neg.any() else None,
        }

    started = time.time()
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu",
        "torch": torch.__version__,
        "rows": len(labels),
        "results": {},
        "skipped": [],
    }
    # Every configuration with seed 0 first, then seed 1 (training order and initialisation) while time lasts.
    for seed in seeds:
        for name, cfg in ((n, CONFIGS[n]) for n in names):
            key = f"{name}_seed{seed}"
            if time.time() - started > budget_s:
                result["skipped"].append(key)
                continue
            epochs = 1 if smoke else int(cfg.get("epochs", 3))
            t0 = time.time()
            metrics: dict[str, Any] = {}
            cv_pred = np.full(len(labels), -1)
            for split, (train_idx, test_idx) in splits.items():
                pred = fit_predict(cfg, train_idx, test_idx, epochs, seed)
                if split.startswith("oos_"):
                    metrics[f"out_of_source_to_{split[4:]}"] = agreement(pred, labels[test_idx])
                else:
                    cv_pred[test_idx] = pred
            for src in DEV:
                mask = (source == src) & (cv_pred >= 0)
                if mask.any():
                    metrics[f"grouped_{FOLDS}fold_{src}"] = agreement(cv_pred[mask], labels[mask])
            metrics["seconds"] = round(time.time() - t0, 1)
            result["results"][key] = {"config": dict(cfg, epochs=epochs), **metrics}
            print(key, json.dumps(metrics), flush=True)
            (out / "offline_judge_layers.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    (out / "offline_judge_layers.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("prepare", "train"))
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--budget-s", type=float, default=420.0, help="start no configuration after this")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, in order")
    parser.add_argument("--seeds", default="0,1", help="comma-separated training seeds")
    parser.add_argument("--smoke", action="store_true", help="a few rows, one epoch (a CPU check)")
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.data)
    else:
        train(args.budget_s, args.smoke, args.configs.split(","), [int(x) for x in args.seeds.split(",")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
