"""Sharding a run over machines without Ray: `safemlrm run CONFIG --shard i/n`.

A shard keeps the probes whose key hashes to i modulo n, with every target of each probe, so pairs
of a reasoning model and its base stay in one shard. The hash is of the probe's content key, so
every machine computes the same split from the same config, whatever order the data arrives in.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 <= i < n (shards are numbered from 0)")

    @classmethod
    def parse(cls, text: str | Shard) -> Shard:
        if isinstance(text, Shard):
            return text
        match = _SHARD.match(text)
        if match is None:
            raise ValueError(f"--shard {text!r}: expected i/n, e.g. 0/4 (shards are numbered from 0)")
        return cls(int(match.group(1)), int(match.group(2)))

    def keeps(self, probe_key: str) -> bool:
        digest = hashlib.sha256(probe_key.encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of_command(command: str) -> Shard | None:
    """The shard an invocation ran, from its recorded command ('run --shard 1/4')."""
    match = re.search(r"--shard (\d+/\d+)", command)
    return Shard.parse(match.group(1)) if match else None
