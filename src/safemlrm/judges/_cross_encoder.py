"""A cross-encoder harm scorer: all-MiniLM-L6-v2 reading the instruction and the response together.

A bi-encoder embeds the response alone and can only compare it with the instruction afterwards; a
cross-encoder attends across both, so it can tell "answers this request" from "talks about the topic".
The packaged encoder's lower `n_frozen` layers are used as they ship; its top layers and a 2-class head
were fine-tuned on labelled (instruction, response) pairs by `scripts/train_cross_encoder.py` and ship
in safemlrm as int8 weights with one scale per output row (about 3.6 MB).

Input: ``[CLS] instruction [SEP] response [SEP]``, at most `max_length` tokens. The instruction keeps
its first INSTRUCTION_TOKENS tokens; a response longer than the rest keeps its head and its last
quarter (a reasoning trace that ends in a refusal, or a refusal that ends in a recipe). Training and
inference build the input with the same function (`pair_input_ids`).

The whole model runs with its Linear layers dynamically quantised to int8, one text at a time (the
activation scales of dynamic quantisation depend on the batch), as the encoder of the linear heads
does; the frozen layers' outputs used for training were computed the same way.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from safemlrm.judges._encoder import EXTRA_HINT, model_dir
from safemlrm.judges._offline_features import EncoderSettings

FORMAT = "minilm-cross-encoder-1"
INSTRUCTION_TOKENS = 64
# A WordPiece token spans at least one character and English averages under five: cutting the text to
# 32 characters per token kept leaves the token window unchanged and saves tokenizing all of a long trace.
CHARS_PER_TOKEN = 32

_LOCK = threading.Lock()
_MODELS: dict[str, CrossEncoder] = {}


def window_ids(ids: list[int], budget: int) -> list[int]:
    """All of `ids`, or their head and last quarter when there are more than `budget`."""
    if len(ids) <= budget:
        return ids
    tail = budget // 4
    return ids[: budget - tail] + (ids[-tail:] if tail else [])


def pair_input_ids(tokenizer: Any, instruction: str, response: str, max_length: int) -> tuple[list[int], list[int]]:
    """(input_ids, token_type_ids) of ``[CLS] instruction [SEP] response [SEP]`` within max_length tokens."""
    instruction_ids: list[int] = tokenizer(
        instruction[: INSTRUCTION_TOKENS * CHARS_PER_TOKEN], add_special_tokens=False, verbose=False
    )["input_ids"][:INSTRUCTION_TOKENS]
    budget = max_length - 3 - len(instruction_ids)
    tail = budget // 4
    head_chars, tail_chars = (budget - tail) * CHARS_PER_TOKEN, tail * CHARS_PER_TOKEN
    if len(response) > head_chars + tail_chars:
        head_ids = tokenizer(response[:head_chars], add_special_tokens=False, verbose=False)["input_ids"]
        tail_text = response[-tail_chars:] if tail else ""
        tail_ids = tokenizer(tail_text, add_special_tokens=False, verbose=False)["input_ids"]
        response_ids = head_ids[: budget - tail] + (tail_ids[-tail:] if tail else [])
    else:
        response_ids = window_ids(tokenizer(response, add_special_tokens=False, verbose=False)["input_ids"], budget)
    cls, sep = int(tokenizer.cls_token_id), int(tokenizer.sep_token_id)
    input_ids = [cls, *instruction_ids, sep, *response_ids, sep]
    token_types = [0] * (len(instruction_ids) + 2) + [1] * (len(response_ids) + 1)
    return input_ids, token_types


def quantize_rows(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 with one float32 scale per row: weight ~= q * scale[:, None]."""
    scale = np.abs(weight).max(axis=1) / 127.0
    scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
    q = np.clip(np.rint(weight / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


@dataclass(frozen=True)
class CrossEncoderHead(EncoderSettings):
    """The shipped fine-tuned part: top-layer tensors (by state-dict name), the head, settings and meta."""

    classes: tuple[str, ...]
    tensors: dict[str, np.ndarray]  # "layers.<i>.<param>" (dequantised float32) and "head.weight"/"head.bias"
    temperature: float
    meta: dict[str, Any]
    sha256: str

    blocks: tuple[str, ...] = ()  # no feature blocks: the model reads the texts

    @property
    def n_frozen(self) -> int:
        return int(self.meta["n_frozen"])

    def save(self, stem: Path) -> None:
        """`<stem>.npz` (int8 matrices + scales, float32 vectors) and `<stem>.json`."""
        arrays: dict[str, np.ndarray] = {}
        for name, value in self.tensors.items():
            if value.ndim == 2 and not name.startswith("head."):
                arrays[name + ".q"], arrays[name + ".scale"] = quantize_rows(value)
            else:
                arrays[name] = value.astype(np.float32)
        np.savez_compressed(stem.with_suffix(".npz"), **arrays)  # type: ignore[arg-type]
        meta = {**self.meta, "format": FORMAT, "classes": list(self.classes), "temperature": self.temperature}
        stem.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def is_cross_encoder(meta: dict[str, Any]) -> bool:
    return meta.get("format") == FORMAT


def cross_encoder_from_bytes(arrays_bytes: bytes, meta_text: str, name: str) -> CrossEncoderHead:
    meta = json.loads(meta_text)
    if not is_cross_encoder(meta):
        raise ValueError(f"{name}: not a cross-encoder file (format {meta.get('format')!r}, expected {FORMAT!r})")
    arrays = np.load(io.BytesIO(arrays_bytes))
    tensors: dict[str, np.ndarray] = {}
    for key in arrays.files:
        if key.endswith(".scale"):
            continue
        if key.endswith(".q"):
            base = key[: -len(".q")]
            tensors[base] = arrays[key].astype(np.float32) * arrays[base + ".scale"][:, None]
        else:
            tensors[key] = arrays[key].astype(np.float32)
    for required in ("head.weight", "head.bias"):
        if required not in tensors:
            raise ValueError(f"{name}: the cross-encoder file has no {required!r}")
    classes = tuple(meta["classes"])
    if tensors["head.weight"].shape[0] != len(classes):
        raise ValueError(f"{name}: head has {tensors['head.weight'].shape[0]} outputs for {len(classes)} classes")
    digest = hashlib.sha256(arrays_bytes + meta_text.encode("utf-8")).hexdigest()[:16]
    return CrossEncoderHead(classes, tensors, float(meta.get("temperature", 1.0)), meta, digest)


def load_base(quantize: bool) -> tuple[Any, Any, Any]:
    """(torch, tokenizer, MiniLM model) from the packaged encoder, int8-quantised when asked."""
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise ImportError(f"the offline judges need torch and transformers: {EXTRA_HINT}") from exc
    path = model_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    # sdpa (fused) attention: 30% faster than eager on a 2-core CPU, and it takes the explicit additive mask
    # the training script gives single layers. Training and inference must use the same kind: in float they
    # agree to 1e-6, but int8 activations turn that into logit shifts of a few tenths.
    model = AutoModel.from_pretrained(str(path), local_files_only=True, attn_implementation="sdpa").eval()
    if quantize:
        model = quantize_model(torch, model)
    return torch, tokenizer, model


def quantize_model(torch: Any, model: Any) -> Any:
    with warnings.catch_warnings():  # torch marks dynamic quantisation deprecated (it still works in 2.x)
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class CrossEncoder:
    """(instruction, response) pairs -> class probabilities. Thread-safe; loads torch on construction."""

    def __init__(self, head: CrossEncoderHead) -> None:
        torch, tokenizer, model = load_base(quantize=False)
        layers = model.encoder.layer
        n_layers = len(layers)
        if not 0 <= head.n_frozen < n_layers:
            raise ValueError(f"cross-encoder: n_frozen={head.n_frozen} for a {n_layers}-layer encoder")
        state = {}
        for index in range(head.n_frozen, n_layers):
            for name in layers[index].state_dict():
                key = f"layers.{index - head.n_frozen}.{name}"
                if key not in head.tensors:
                    raise ValueError(f"cross-encoder file has no tensor {key!r}")
                state[f"{index}.{name}"] = torch.from_numpy(head.tensors[key])
        frozen = {k: v for k, v in layers.state_dict().items() if int(k.split(".")[0]) < head.n_frozen}
        layers.load_state_dict({**frozen, **state}, strict=True)
        self._head_weight = head.tensors["head.weight"].astype(np.float64)
        self._head_bias = head.tensors["head.bias"].astype(np.float64)
        self._temperature = head.temperature
        self._torch = torch
        self._tokenizer = tokenizer
        self._model = quantize_model(torch, model) if head.encoder_quantized else model
        self.max_length = head.encoder_max_length
        self._run_lock = threading.Lock()

    def pooled(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """(n, 384) mean-pooled last hidden states, one pair at a time."""
        torch = self._torch
        out = np.zeros((len(pairs), self._head_weight.shape[1]), dtype=np.float64)
        with self._run_lock, torch.inference_mode():
            for row, (instruction, response) in enumerate(pairs):
                ids, types = pair_input_ids(self._tokenizer, instruction, response, self.max_length)
                hidden = self._model(
                    input_ids=torch.tensor([ids]),
                    token_type_ids=torch.tensor([types]),
                    attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                ).last_hidden_state
                out[row] = hidden[0].mean(0).double().numpy()
        return out

    def logits(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        result: np.ndarray = self.pooled(pairs) @ self._head_weight.T + self._head_bias
        return result

    def predict_proba(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        if not pairs:
            return np.zeros((0, self._head_weight.shape[0]))
        z = self.logits(pairs) / self._temperature
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        probs: np.ndarray = e / e.sum(axis=1, keepdims=True)
        return probs


def get_cross_encoder(head: CrossEncoderHead) -> CrossEncoder:
    """The process-wide model for this head (built on first use)."""
    with _LOCK:
        if head.sha256 not in _MODELS:
            _MODELS[head.sha256] = CrossEncoder(head)
        return _MODELS[head.sha256]

