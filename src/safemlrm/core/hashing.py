"""Stable content hashes: the keys of the run store."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def content_hash(value: Any) -> str:
    """A 32-hex-digit sha256 of the canonical JSON of `value`."""
    return digest(canonical_json(value))


def digest(raw: bytes) -> str:
    """The 32-hex-digit sha256 that `content_hash` uses, of bytes already serialised."""
    return hashlib.sha256(raw).hexdigest()[:32]


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
