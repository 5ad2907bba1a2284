"""Shard: parsing `i/n` and splitting probe keys so that every key lands in exactly one shard."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from safemlrm.core.shard import Shard, shard_of_command


def test_parse_and_print() -> None:
    assert Shard.parse("1/4") == Shard(1, 4)
    assert Shard.parse(" 0 / 2 ") == Shard(0, 2)
    assert str(Shard(3, 8)) == "3/8"
    assert Shard.parse(Shard(0, 1)) == Shard(0, 1)


@pytest.mark.parametrize("text", ["4/4", "1/0", "-1/3", "a/b", "1", "1/2/3", ""])
def test_bad_shards_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"i/n|0 <= i < n"):
        Shard.parse(text)


@given(st.lists(st.text(min_size=1), min_size=1, max_size=50), st.integers(min_value=1, max_value=7))
def test_every_key_is_in_exactly_one_shard(keys: list[str], n: int) -> None:
    for key in keys:
        assert sum(Shard(i, n).keeps(key) for i in range(n)) == 1


def test_split_is_stable_and_roughly_even() -> None:
    keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(4000)]
    sizes = [sum(Shard(i, 4).keeps(k) for k in keys) for i in range(4)]
    assert all(900 < s < 1100 for s in sizes), sizes
    # A fixed key always maps to the same shard (the split must not depend on the process).
    assert [Shard(i, 3).keeps("abc") for i in range(3)] == [True, False, False]


def test_shard_of_command() -> None:
    assert shard_of_command("run --shard 2/5") == Shard(2, 5)
    assert shard_of_command("run") is None
