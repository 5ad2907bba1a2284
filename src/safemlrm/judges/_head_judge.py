"""Shared machinery of the CPU judges: a shipped model file over the packaged MiniLM encoder.

The model file is either a linear head (MiniLM embeddings -> features -> logistic regression, the
`refusal` judge) or a cross-encoder (MiniLM's fine-tuned top layers reading instruction and response
together, the `offline` harm judge); `load_judge_model` tells them apart by the file's JSON.

Concurrent `judge` calls are gathered by a micro-batcher and encoded together in a worker thread
(the event loop never blocks on torch); the encoder is loaded once per process, on the first call;
instruction embeddings are cached, since one instruction is judged for many texts and parts.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import OrderedDict
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from safemlrm.core.batching import MicroBatcher
from safemlrm.core.language import UNREADABLE_LABEL, unreadable_language, unreadable_rationale
from safemlrm.core.trust import JudgeValidation
from safemlrm.judges._base import JudgeBase
from safemlrm.judges._cross_encoder import (
    CrossEncoderHead,
    cross_encoder_from_bytes,
    get_cross_encoder,
    is_cross_encoder,
)
from safemlrm.judges._encoder import encoder_version, get_encoder
from safemlrm.judges._offline_features import LinearHead, build_features, linear_head_from_bytes, read_model_files
from safemlrm.plugin_api import NAN, Judgement, Part, PluginContext, Sample

INSTRUCTION_CACHE_SIZE = 4096


def load_judge_model(name_or_path: str) -> LinearHead | CrossEncoderHead:
    """A shipped model by name (`offline_harm`, `refusal`) or a path to a `.npz` with its `.json` beside it."""
    import json

    arrays_bytes, meta_text = read_model_files(name_or_path)
    try:
        meta = json.loads(meta_text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"judge model {name_or_path!r}: its JSON does not parse ({exc})") from exc
    if isinstance(meta, dict) and is_cross_encoder(meta):
        return cross_encoder_from_bytes(arrays_bytes, meta_text, name_or_path)
    return linear_head_from_bytes(arrays_bytes, meta_text, name_or_path)


class HeadJudgeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    head: str | None = Field(
        default=None, description="a shipped head name or a path to a trained .npz (default: built-in)"
    )
    max_batch_size: int = Field(default=32, ge=1, le=512, description="texts encoded together")
    max_concurrency: int = Field(default=256, ge=1)
    unreadable: Literal["nan", "judge"] = Field(
        default="nan",
        description="text in a language the English encoder cannot read: nan (label unreadable_language) or "
        "judge it anyway",
    )


class HeadJudge(JudgeBase):
    """Base class of the offline judges (not registered itself)."""

    kind: ClassVar[str] = "head"
    version: ClassVar[str] = "1"
    default_head: ClassVar[str] = ""
    # Code beyond the class hierarchy that shapes a verdict (see verdict_code_version).
    verdict_modules: ClassVar[tuple[str, ...]] = (
        "safemlrm.judges._offline_features",
        "safemlrm.judges._encoder",
        "safemlrm.judges._cross_encoder",
    )
    reads: ClassVar[frozenset[str]] = frozenset({"en"})  # all-MiniLM-L6-v2 and the lexical cues are English

    def __init__(self, params: HeadJudgeParams, ctx: PluginContext) -> None:
        self.params = params
        self.label = ctx.label or self.kind
        self.max_concurrency = params.max_concurrency
        self.head: LinearHead | CrossEncoderHead = load_judge_model(params.head or self.default_head)
        self._batcher: MicroBatcher[tuple[str, str], np.ndarray] = MicroBatcher(
            self._predict_async, max_batch_size=params.max_batch_size, max_wait_s=0.002, max_inflight=1
        )
        self._instruction_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        # `head` hashes the head's files as loaded (a retrained head at the same path is a new identity);
        # `encoder` is the packaged MiniLM's version (its embeddings are the head's input).
        identity = {"kind": self.kind, "version": self.version, "head": self.head.sha256, "encoder": encoder_version()}
        if self.params.unreadable == "nan":
            identity["reads"] = ",".join(sorted(self.reads))  # judgements made before the check differ
        return identity

    def validation(self) -> JudgeValidation:
        """The `agreement` list of the JSON beside the judge's model file ("not validated here" without one)."""
        from safemlrm.judges._trust import head_json, head_validation

        name = self.params.head or self.default_head
        return head_validation(head_json(name), name)

    # ------------------------------------------------------------------ prediction

    def _instruction_embeddings(self, instructions: list[str]) -> np.ndarray:
        encoder = get_encoder(self.head.encoder_max_length, self.head.encoder_quantized)
        with self._cache_lock:
            known = {i: self._instruction_cache[i] for i in instructions if i in self._instruction_cache}
        missing = list(dict.fromkeys(i for i in instructions if i not in known))
        if missing:
            encoded = encoder.encode(missing)
            known.update(zip(missing, encoded, strict=True))
            with self._cache_lock:
                for text in missing:
                    self._instruction_cache[text] = known[text]
                while len(self._instruction_cache) > INSTRUCTION_CACHE_SIZE:
                    self._instruction_cache.popitem(last=False)
        return np.stack([known[i] for i in instructions])

    def predict(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Class probabilities (n, k) for (instruction, response) pairs. Synchronous; loads the encoder."""
        head = self.head
        if isinstance(head, CrossEncoderHead):
            return get_cross_encoder(head).predict_proba(pairs)
        instructions = [i for i, _ in pairs]
        responses = [r for _, r in pairs]
        encoder = get_encoder(head.encoder_max_length, head.encoder_quantized)
        response_emb = encoder.encode(responses)
        needs_instruction = any(b in ("prod", "cos") for b in head.blocks)
        instruction_emb = self._instruction_embeddings(instructions) if needs_instruction else response_emb
        features = build_features(instruction_emb, response_emb, instructions, responses, head.blocks)
        return head.predict_proba(features)

    async def _predict_async(self, pairs: list[tuple[str, str]]) -> list[np.ndarray]:
        probs = await asyncio.to_thread(self.predict, pairs)
        return list(probs)

    # ------------------------------------------------------------------ judging

    def to_judgement(self, probs: np.ndarray) -> Judgement:
        raise NotImplementedError

    def probabilities_text(self, probs: np.ndarray) -> str:
        return ", ".join(f"P({c})={p:.3f}" for c, p in zip(self.head.classes, probs, strict=True))

    async def judge(self, sample: Sample, text: str, part: Part) -> Judgement:
        if not text.strip():
            return self._judgement(NAN, "empty", error="empty text: nothing to judge")
        if self.params.unreadable == "nan":
            language = unreadable_language(text, self.reads)
            if language is not None:
                return self._judgement(NAN, UNREADABLE_LABEL, rationale=unreadable_rationale(language, self.reads))
        try:
            probs = await self._batcher.submit_one((sample.instruction, text))
            if not all(math.isfinite(float(p)) for p in probs):
                raise ValueError(f"non-finite probabilities {probs!r}")
            return self.to_judgement(probs)
        except Exception as exc:  # a judge never raises: the failure is a NaN judgement
            return self._judgement(NAN, "error", error=f"{type(exc).__name__}: {exc}")

    async def aclose(self) -> None:
        await self._batcher.aclose()
