"""`safemlrm merge RUN_DIR... --out RUN_DIR`: join the stores of sharded (or any) runs into one run.

Every table's rows are copied by key (a row present in several sources is kept once; a successful
generation or judgement wins over a failed one). The merged run gets one new invocation, `merge`,
whose items are the union of the sources' latest invocations with their original sequence numbers,
so its records come in the order of an unsharded run and its report is the unsharded run's report.
Images the runs rendered (their `assets/` folders) are copied too, and image paths point at the copies.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from safemlrm.core.shard import shard_of_command
from safemlrm.core.store import STORE_FILE, RunStore, StoreError


class MergeError(ValueError):
    """Runs that cannot be merged, naming the run directory and what differs."""


@dataclass
class MergeResult:
    out: Path
    sources: list[Path]
    items: int
    counts: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    reports: dict[str, Path] = field(default_factory=dict)


def _latest(source: Path) -> dict[str, Any]:
    store = RunStore(source, create=False)
    try:
        latest = store.latest_invocation()
        targets = {label: info.identity for label, info in store.target_infos().items()}
    finally:
        store.close()
    if latest is None:
        raise MergeError(f"{source}: the run has not planned any work yet; nothing to merge")
    return {**latest, "target_identities": targets}


def _config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _check_sources(sources: Sequence[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    if not sources:
        raise MergeError("merge needs at least one run directory")
    resolved = [s.resolve() for s in sources]
    if len(set(resolved)) != len(resolved):
        raise MergeError("a run directory is named twice")
    latest = [_latest(s) for s in sources]
    warnings: list[str] = []
    first = latest[0]["config"]
    for source, inv in zip(sources[1:], latest[1:], strict=True):
        differ = _config_diff(first, inv["config"])
        if differ:
            raise MergeError(
                f"{source}: its config differs from {sources[0]}'s in {', '.join(differ)}; "
                "only runs of the same config merge into one report"
            )
    for source, inv in zip(sources[1:], latest[1:], strict=True):
        for label, identity in inv["target_identities"].items():
            other = latest[0]["target_identities"].get(label)
            if other is not None and other != identity:
                warnings.append(f"target {label!r} has another identity in {source} than in {sources[0]}")
    shards = [shard_of_command(inv["command"]) for inv in latest]
    if any(s is not None for s in shards):
        counts = {s.count for s in shards if s is not None}
        if len(counts) > 1 or None in shards:
            warnings.append(f"the runs mix shardings ({', '.join(str(s or 'unsharded') for s in shards)})")
        else:
            n = counts.pop()
            missing = sorted(set(range(n)) - {s.index for s in shards if s is not None})
            if missing:
                warnings.append(
                    f"shards {', '.join(f'{i}/{n}' for i in missing)} are missing: the merge is partial"
                )
    return latest, warnings


_PREFER_OK = "ON CONFLICT(key) DO UPDATE SET {cols} WHERE excluded.ok > {table}.ok"


def _copy_tables(conn: sqlite3.Connection, invocation: int, source_invocation: int) -> None:
    conn.execute("INSERT OR IGNORE INTO targets SELECT * FROM src.targets")
    conn.execute("INSERT OR IGNORE INTO judges SELECT * FROM src.judges")
    conn.execute("INSERT OR IGNORE INTO samples SELECT * FROM src.samples")
    conn.execute("INSERT OR IGNORE INTO probes SELECT * FROM src.probes")
    gen_cols = (
        "probe_key=excluded.probe_key, target=excluded.target, "
        "ok=1, data=excluded.data, created=excluded.created"
    )
    conn.execute(
        "INSERT INTO generations SELECT * FROM src.generations WHERE true "
        + _PREFER_OK.format(cols=gen_cols, table="generations")
    )
    conn.execute("INSERT OR IGNORE INTO parsed SELECT * FROM src.parsed")
    # The parse of a successful generation that replaced a failed one comes from the same source.
    conn.execute(
        "INSERT OR REPLACE INTO parsed SELECT p.* FROM src.parsed p "
        "JOIN src.generations g ON g.key = p.generation_key WHERE g.ok = 1"
    )
    judgement_cols = "judge=excluded.judge, ok=1, data=excluded.data, created=excluded.created"
    conn.execute(
        "INSERT INTO judgements SELECT * FROM src.judgements WHERE true "
        + _PREFER_OK.format(cols=judgement_cols, table="judgements")
    )
    conn.execute(
        "INSERT INTO scores SELECT * FROM src.scores WHERE true "
        "ON CONFLICT(generation_key, part, judge) DO UPDATE SET judgement_key = excluded.judgement_key "
        "WHERE (SELECT ok FROM judgements WHERE key = excluded.judgement_key) "
        "> coalesce((SELECT ok FROM judgements WHERE key = scores.judgement_key), 0)"
    )
    conn.execute(
        "INSERT OR IGNORE INTO items (probe_key, target, generation_key, invocation, seq, sample) "
        "SELECT probe_key, target, generation_key, ?, seq, sample FROM src.items "
        "WHERE invocation = ?",
        (invocation, source_invocation),
    )


def _copy_assets(source: Path, out: Path) -> dict[str, str]:
    """Copy rendered images (content-addressed file names); file name -> path of the copy."""
    moved: dict[str, str] = {}
    assets = source / "assets"
    if not assets.is_dir():
        return moved
    target_dir = out / "assets"
    target_dir.mkdir(parents=True, exist_ok=True)
    for path in assets.iterdir():
        if not path.is_file() or path.suffix == ".tmp":
            continue
        copy = target_dir / path.name
        if not copy.exists():
            shutil.copy2(path, copy)
        moved[path.name] = str(copy.resolve())
    return moved


def _relocate(value: Any, moved: dict[str, str]) -> Any:
    if isinstance(value, dict):
        if isinstance(value.get("path"), str) and isinstance(value.get("sha256"), str):
            # Asset names carry the first 16 hex digits of the image's hash (PluginContext.save_image).
            name = Path(value["path"]).name
            if name in moved and value["sha256"][:16] in name:
                return {**value, "path": moved[name]}
            return value
        return {k: _relocate(v, moved) for k, v in value.items()}
    if isinstance(value, list):
        return [_relocate(v, moved) for v in value]
    return value


def _rewrite_image_paths(conn: sqlite3.Connection, moved: dict[str, str]) -> None:
    """Point images the runs rendered at the merged run's copies, so the shards can be deleted."""
    if not moved:
        return
    for table in ("samples", "probes"):
        rows = conn.execute(f"SELECT key, data FROM {table} WHERE data LIKE '%assets%'").fetchall()
        for key, data in rows:
            value = orjson.loads(data)
            new = _relocate(value, moved)
            if new != value:
                # Keys hash image bytes, not paths (types._without_image_paths), so keys stay valid.
                conn.execute(f"UPDATE {table} SET data = ? WHERE key = ?", (orjson.dumps(new).decode(), key))


def merge_runs(sources: Sequence[str | Path], out: str | Path) -> MergeResult:
    """Merge the stores of `sources` into a new run directory `out`."""
    from safemlrm.pipeline.build import environment

    source_dirs = [Path(s) for s in sources]
    out_dir = Path(out)
    if (out_dir / STORE_FILE).exists():
        raise MergeError(f"{out_dir}: already holds a run; merge into a new directory")
    if any(out_dir.resolve() == s.resolve() for s in source_dirs):
        raise MergeError(f"{out_dir}: the output cannot be one of the runs merged")
    latest, warnings = _check_sources(source_dirs)
    store = RunStore(out_dir)
    conn = store.conn
    try:
        for source in source_dirs:  # history first, so the merge invocation is the latest
            src_store = RunStore(source, create=False)
            try:
                history = src_store.invocations()
            finally:
                src_store.close()
            for inv in history:
                env = {**inv["environment"], "merged_from": str(source)}
                new_id = store.start_invocation(inv["command"], inv["config"], env)
                conn.execute(
                    "UPDATE invocations SET started=?, finished=?, status=?, counters=? WHERE id=?",
                    (
                        inv["started"],
                        inv["finished"],
                        inv["status"],
                        orjson.dumps(inv["counters"]).decode() if inv["counters"] is not None else None,
                        new_id,
                    ),
                )
        merge_env = {
            **environment(),
            "merged_from": [str(s) for s in source_dirs],
            "shards": [str(shard_of_command(inv["command"]) or "") for inv in latest],
        }
        invocation = store.start_invocation("merge", latest[0]["config"], merge_env)
        moved: dict[str, str] = {}
        for source, inv in zip(source_dirs, latest, strict=True):
            conn.execute("ATTACH DATABASE ? AS src", (str(source / STORE_FILE),))
            try:
                conn.execute("BEGIN")
                _copy_tables(conn, invocation, int(inv["id"]))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                conn.execute("DETACH DATABASE src")
            moved.update(_copy_assets(source, out_dir))
        conn.execute("BEGIN")
        _rewrite_image_paths(conn, moved)
        conn.execute("COMMIT")
        items = int(
            conn.execute("SELECT COUNT(*) FROM items WHERE invocation = ?", (invocation,)).fetchone()[0]
        )
        counts = store.counts()
        store.finish_invocation(
            invocation, "finished", {"sources": len(source_dirs), "items": items, "warnings": warnings}
        )
    finally:
        store.close()
    return MergeResult(out_dir, source_dirs, items, counts, warnings)


# ---------------------------------------------------------------- CLI


def cmd_merge(args: argparse.Namespace) -> int:
    import sys

    try:
        result = merge_runs(args.run_dirs, args.out)
    except StoreError as exc:
        raise MergeError(str(exc)) from None
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"merged {len(result.sources)} runs into {result.out}: {result.items} (probe, target) pairs")
    if not args.no_report:
        from safemlrm.verbs import api

        for name, path in api.report(result.out).items():
            print(f"{name}: {path}")
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("merge", help="merge sharded runs (safemlrm run --shard i/n) into one run")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories to merge")
    p.add_argument("--out", required=True, help="new run directory for the merged run")
    p.add_argument("--no-report", action="store_true", help="do not write the merged run's reports")
    p.set_defaults(handler=cmd_merge)
