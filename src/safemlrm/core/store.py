"""The run store: one SQLite file per run directory holding every stage's rows under content keys.

Guarantees (tested): a finished run run again makes no target or judge call; a run killed at any
point (also ``kill -9``) resumes doing only the missing work, with no duplicate rows; a finished run
can be re-judged without generating again. Rows are written in small transactions: a unit of work
(a generation with its parse, a judgement with its score link) is never half-written.

WAL mode with ``synchronous=NORMAL``: a committed transaction survives the process being killed
(it is in the OS page cache); only a power cut can lose the last few, which a resume redoes.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, overload

import orjson

from safemlrm.core.records import JudgeInfo, Record, RunData, TargetInfo
from safemlrm.core.types import Generation, Judgement, ParsedOutput, Part, Probe, Sample

STORE_FILE = "run.sqlite"
SCHEMA_VERSION = 2  # 2: items carry a sample index (several generations per probe and target)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,
    command TEXT NOT NULL,
    config TEXT NOT NULL,
    environment TEXT NOT NULL,
    counters TEXT,
    pid INTEGER,
    host TEXT
);
CREATE TABLE IF NOT EXISTS targets (label TEXT PRIMARY KEY, info TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS judges (label TEXT PRIMARY KEY, info TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (key TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS probes (key TEXT PRIMARY KEY, sample_key TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY, probe_key TEXT NOT NULL, target TEXT NOT NULL, ok INTEGER NOT NULL,
    data TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS parsed (generation_key TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS judgements (
    key TEXT PRIMARY KEY, judge TEXT NOT NULL, ok INTEGER NOT NULL, data TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS scores (
    generation_key TEXT NOT NULL, part TEXT NOT NULL, judge TEXT NOT NULL, judgement_key TEXT NOT NULL,
    PRIMARY KEY (generation_key, part, judge)
);
CREATE TABLE IF NOT EXISTS items (
    probe_key TEXT NOT NULL, target TEXT NOT NULL, generation_key TEXT NOT NULL,
    invocation INTEGER NOT NULL, seq INTEGER NOT NULL, sample INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (probe_key, target, sample)
);
CREATE INDEX IF NOT EXISTS items_by_invocation ON items (invocation, seq);
"""

# Schema 1 -> 2: the items table gains its sample column (0 for every existing row) and a key with it.
MIGRATE_1_TO_2 = """
ALTER TABLE items RENAME TO items_v1;
DROP INDEX IF EXISTS items_by_invocation;
CREATE TABLE items (
    probe_key TEXT NOT NULL, target TEXT NOT NULL, generation_key TEXT NOT NULL,
    invocation INTEGER NOT NULL, seq INTEGER NOT NULL, sample INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (probe_key, target, sample)
);
INSERT INTO items (probe_key, target, generation_key, invocation, seq, sample)
    SELECT probe_key, target, generation_key, invocation, seq, 0 FROM items_v1;
DROP TABLE items_v1;
CREATE INDEX items_by_invocation ON items (invocation, seq);
UPDATE meta SET value = '2' WHERE key = 'schema_version';
"""


class StoreError(RuntimeError):
    pass


# Columns added to a table after the first stores were written: added in place when missing.
_ADDED_COLUMNS = {"invocations": (("pid", "INTEGER"), ("host", "TEXT"))}


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    for table, columns in _ADDED_COLUMNS.items():
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns:
            if name not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (True when it cannot be told)."""
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


class KeyFilter:
    """A fixed-size Bloom filter over store keys: "surely absent" answers skip a SELECT.

    Keys are hex digests already, so two slices of a key give the bit positions. Memory is fixed
    (``2**bits_log2`` bits, 2 MiB by default) whatever the run's size; a false "maybe present" costs
    only the SELECT it would have made anyway (about 1% at a million keys).
    """

    def __init__(self, bits_log2: int = 24) -> None:
        self._mask = (1 << bits_log2) - 1
        self._bits = bytearray(1 << (bits_log2 - 3))

    def _positions(self, key: str) -> tuple[int, int]:
        return int(key[:8], 16) & self._mask, int(key[8:16], 16) & self._mask

    def add(self, key: str) -> None:
        for pos in self._positions(key):
            self._bits[pos >> 3] |= 1 << (pos & 7)

    def __contains__(self, key: str) -> bool:
        return all(self._bits[pos >> 3] & (1 << (pos & 7)) for pos in self._positions(key))


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _model_json(model: Any) -> str:
    # NaN scores must survive: pydantic writes them as the JSON constant NaN (ser_json_inf_nan).
    text: str = model.model_dump_json()
    return text


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


class RunStore:
    """All reads and writes of one run directory's SQLite file."""

    def __init__(self, run_dir: str | Path, *, create: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / STORE_FILE
        if not self.path.exists() and not create:
            raise StoreError(f"{self.run_dir} is not a safemlrm run directory (no {STORE_FILE})")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.conn = connect(self.path)
        self.conn.executescript(SCHEMA)
        _add_missing_columns(self.conn)
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) == 1:
            self.conn.executescript(f"BEGIN; {MIGRATE_1_TO_2} COMMIT;")
        elif int(row[0]) != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: store schema {row[0]} is not supported (expected {SCHEMA_VERSION})")
        self._in_tx = False
        self._pending = 0
        self._last_commit = time.monotonic()
        # Built on first use from the table, then kept up to date by this store's own writes (a run
        # has one writer); they let a fresh run skip the SELECTs for rows that cannot exist yet.
        self._generation_keys: KeyFilter | None = None
        self._judgement_keys: KeyFilter | None = None

    def _key_filter(self, table: str) -> KeyFilter:
        keys = KeyFilter()
        for (key,) in self.conn.execute(f"SELECT key FROM {table}"):
            keys.add(key)
        return keys

    def _known_generations(self) -> KeyFilter:
        if self._generation_keys is None:
            self._generation_keys = self._key_filter("generations")
        return self._generation_keys

    def _known_judgements(self) -> KeyFilter:
        if self._judgement_keys is None:
            self._judgement_keys = self._key_filter("judgements")
        return self._judgement_keys

    # ------------------------------------------------------------ transactions
    def _begin(self) -> None:
        if not self._in_tx:
            self.conn.execute("BEGIN")
            self._in_tx = True

    def commit(self) -> None:
        if self._in_tx:
            self.conn.execute("COMMIT")
            self._in_tx = False
        self._pending = 0
        self._last_commit = time.monotonic()

    def maybe_commit(self, max_rows: int = 256, max_age_s: float = 0.2) -> None:
        """Group small units into one transaction; each unit is written whole before this is called."""
        if self._pending >= max_rows or time.monotonic() - self._last_commit >= max_age_s:
            self.commit()

    def close(self) -> None:
        try:
            self.commit()
        finally:
            self.conn.close()

    # ------------------------------------------------------------ invocations and identity
    def start_invocation(self, command: str, config: dict[str, Any], environment: dict[str, Any]) -> int:
        """Record a new invocation (``running``, with this process's id and host).

        Invocations left ``running`` by a process that is gone (killed, crashed) are marked
        ``killed`` first, so the run's history and its reports say what happened to them.
        """
        self.mark_dead_invocations()
        cur = self.conn.execute(
            "INSERT INTO invocations (started, status, command, config, environment, pid, host) "
            "VALUES (?, 'running', ?, ?, ?, ?, ?)",
            (time.time(), command, _dumps(config), _dumps(environment), os.getpid(), socket.gethostname()),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def mark_dead_invocations(self) -> list[int]:
        """Mark ``killed`` the ``running`` invocations whose process is gone; their ids.

        Only a process on this host can be checked; one on another machine keeps its status.
        """
        host = socket.gethostname()
        dead = [
            int(inv_id)
            for inv_id, pid, inv_host in self.conn.execute(
                "SELECT id, pid, host FROM invocations WHERE status='running'"
            ).fetchall()
            if pid is not None and inv_host == host and not process_alive(int(pid))
        ]
        for inv_id in dead:
            self.conn.execute("UPDATE invocations SET status='killed' WHERE id=? AND status='running'", (inv_id,))
        return dead

    def finish_invocation(self, invocation: int, status: str, counters: dict[str, Any]) -> None:
        self.commit()
        self.conn.execute(
            "UPDATE invocations SET finished=?, status=?, counters=? WHERE id=?",
            (time.time(), status, _dumps(counters), invocation),
        )

    def invocations(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, started, finished, status, command, config, environment, counters FROM invocations ORDER BY id"
        ).fetchall()
        return [
            {
                "id": r[0],
                "started": r[1],
                "finished": r[2],
                "status": r[3],
                "command": r[4],
                "config": orjson.loads(r[5]),
                "environment": orjson.loads(r[6]),
                "counters": orjson.loads(r[7]) if r[7] else None,
            }
            for r in rows
        ]

    def latest_invocation(self) -> dict[str, Any] | None:
        """The newest invocation that planned work (a dry run plans nothing)."""
        rows = [inv for inv in self.invocations() if inv["command"] != "dry-run"]
        return rows[-1] if rows else None

    def put_target(self, info: TargetInfo) -> None:
        self.conn.execute("INSERT OR REPLACE INTO targets VALUES (?, ?)", (info.label, _dumps(asdict(info))))

    def put_judge(self, info: JudgeInfo) -> None:
        self.conn.execute("INSERT OR REPLACE INTO judges VALUES (?, ?)", (info.label, _dumps(info.to_json())))

    def target_infos(self) -> dict[str, TargetInfo]:
        return {
            label: TargetInfo(**orjson.loads(data))
            for label, data in self.conn.execute("SELECT label, info FROM targets")
        }

    def judge_infos(self) -> dict[str, JudgeInfo]:
        return {
            label: JudgeInfo.from_json(orjson.loads(data))
            for label, data in self.conn.execute("SELECT label, info FROM judges")
        }

    # ------------------------------------------------------------ samples and probes
    def put_sample(self, sample: Sample) -> str:
        key = sample.key
        self._begin()
        self.conn.execute("INSERT OR IGNORE INTO samples VALUES (?, ?)", (key, _model_json(sample)))
        self._pending += 1
        return key

    def put_probe(self, probe: Probe) -> str:
        key = probe.key
        self._begin()
        self.conn.execute("INSERT OR IGNORE INTO probes VALUES (?, ?, ?)", (key, probe.sample_key, _model_json(probe)))
        self._pending += 1
        return key

    def put_item(
        self, probe_key: str, target: str, generation_key: str, invocation: int, seq: int, sample: int = 0
    ) -> None:
        self._begin()
        self.conn.execute(
            "INSERT OR REPLACE INTO items (probe_key, target, generation_key, invocation, seq, sample) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (probe_key, target, generation_key, invocation, seq, sample),
        )
        self._pending += 1

    # ------------------------------------------------------------ generations
    def get_generation(self, key: str) -> Generation | None:
        if key not in self._known_generations():
            return None
        row = self.conn.execute("SELECT data FROM generations WHERE key=?", (key,)).fetchone()
        return Generation.model_validate_json(row[0]) if row else None

    def get_generation_and_parsed(self, key: str) -> tuple[Generation, str | None] | None:
        """A stored generation and its stored parse as JSON (compared as text, not re-validated)."""
        if key not in self._known_generations():
            return None
        row = self.conn.execute(
            "SELECT g.data, p.data FROM generations g LEFT JOIN parsed p ON p.generation_key = g.key WHERE g.key=?",
            (key,),
        ).fetchone()
        return (Generation.model_validate_json(row[0]), row[1]) if row else None

    def put_generation(self, key: str, generation: Generation, parsed: ParsedOutput | None) -> None:
        """A generation and its parse, in the same transaction. A retried error replaces the old row."""
        self._begin()
        self.conn.execute(
            "INSERT OR REPLACE INTO generations VALUES (?, ?, ?, ?, ?, ?)",
            (key, generation.probe_key, generation.target, int(generation.ok), _model_json(generation), time.time()),
        )
        if self._generation_keys is not None:
            self._generation_keys.add(key)
        if parsed is not None:
            self.conn.execute("INSERT OR REPLACE INTO parsed VALUES (?, ?)", (key, _model_json(parsed)))
        self._pending += 1

    def get_parsed(self, generation_key: str) -> ParsedOutput | None:
        row = self.conn.execute("SELECT data FROM parsed WHERE generation_key=?", (generation_key,)).fetchone()
        return ParsedOutput.model_validate_json(row[0]) if row else None

    def put_parsed(self, generation_key: str, parsed: ParsedOutput) -> None:
        self._begin()
        self.conn.execute("INSERT OR REPLACE INTO parsed VALUES (?, ?)", (generation_key, _model_json(parsed)))
        self._pending += 1

    # ------------------------------------------------------------ judgements
    def get_judgement(self, key: str) -> Judgement | None:
        if key not in self._known_judgements():
            return None
        row = self.conn.execute("SELECT data FROM judgements WHERE key=? AND ok=1", (key,)).fetchone()
        return Judgement.model_validate_json(row[0]) if row else None

    def has_score(self, generation_key: str, part: Part, judge: str) -> str | None:
        row = self.conn.execute(
            "SELECT s.judgement_key FROM scores s JOIN judgements j ON j.key = s.judgement_key "
            "WHERE s.generation_key=? AND s.part=? AND s.judge=? AND j.ok=1",
            (generation_key, part.value, judge),
        ).fetchone()
        return str(row[0]) if row else None

    def scores_of(self, generation_key: str) -> dict[tuple[str, str], str]:
        """(part, judge) -> judgement key of every successful judgement linked to one generation."""
        rows = self.conn.execute(
            "SELECT s.part, s.judge, s.judgement_key FROM scores s JOIN judgements j ON j.key = s.judgement_key "
            "WHERE s.generation_key=? AND j.ok=1",
            (generation_key,),
        )
        return {(part, judge): jkey for part, judge, jkey in rows}

    def put_judgement(self, key: str, judgement: Judgement, generation_key: str, part: Part, judge: str) -> None:
        """A judgement and the link from (generation, part, judge) to it, in one transaction.

        A judgement with ``error`` set (a transport failure) is kept but marked not ok, so a resume
        tries it again; a NaN from an unparsable reply without ``error`` is a final answer.
        """
        self._begin()
        ok = int(judgement.error is None)
        self.conn.execute(
            "INSERT OR REPLACE INTO judgements VALUES (?, ?, ?, ?, ?)",
            (key, judge, ok, _model_json(judgement), time.time()),
        )
        if self._judgement_keys is not None:
            self._judgement_keys.add(key)
        self.conn.execute("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)", (generation_key, part.value, judge, key))
        self._pending += 1

    def link_score(self, generation_key: str, part: Part, judge: str, judgement_key: str) -> None:
        self._begin()
        self.conn.execute(
            "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)", (generation_key, part.value, judge, judgement_key)
        )
        self._pending += 1

    def copy_judgement(self, key: str, judgement: Judgement) -> None:
        self._begin()
        self.conn.execute(
            "INSERT OR IGNORE INTO judgements VALUES (?, ?, 1, ?, ?)",
            (key, judgement.judge, _model_json(judgement), time.time()),
        )
        if self._judgement_keys is not None:
            self._judgement_keys.add(key)
        self._pending += 1

    # ------------------------------------------------------------ reading a run back
    def counts(self) -> dict[str, int]:
        tables = ("samples", "probes", "generations", "parsed", "judgements", "scores", "items")
        return {t: int(self.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}

    def iter_records(self, invocation: int | None = None) -> Iterator[Record]:
        """Every (probe, target) of the given (default: latest) invocation, in planning order."""
        if invocation is None:
            latest = self.latest_invocation()
            if latest is None:
                return
            invocation = int(latest["id"])
        yield from _iter_records(self.conn, invocation)

    def latest_planned_invocation(self) -> dict[str, Any] | None:
        """The newest invocation that holds items (what `safemlrm judge` judges)."""
        planned: list[dict[str, Any]] = [inv for inv in self.invocations() if self.count_items(int(inv["id"]))]
        return planned[-1] if planned else None

    def claim_items(self, source: int, invocation: int) -> None:
        """Move an invocation's items to a later one (a judge stage over a generated run)."""
        self._begin()
        self.conn.execute("UPDATE items SET invocation=? WHERE invocation=?", (invocation, source))
        self._pending += 1

    def iter_generations(self, invocation: int) -> Iterator[tuple[str, Sample, Generation, str | None]]:
        """(generation key, sample, generation, stored parse as JSON) of each item, in planning order.

        Read on a connection of its own, from a snapshot: the caller may write to this store meanwhile.
        """
        reader = connect(self.path, readonly=True)
        try:
            rows = reader.execute(
                "SELECT i.generation_key, s.data, g.data, pa.data FROM items i "
                "JOIN probes p ON p.key = i.probe_key JOIN samples s ON s.key = p.sample_key "
                "JOIN generations g ON g.key = i.generation_key "
                "LEFT JOIN parsed pa ON pa.generation_key = i.generation_key "
                "WHERE i.invocation = ? ORDER BY i.seq",
                (invocation,),
            )
            for gen_key, sample_json, gen_json, parsed_json in rows:
                sample = Sample.model_validate_json(sample_json)
                yield gen_key, sample, Generation.model_validate_json(gen_json), parsed_json
        finally:
            reader.close()

    def count_items(self, invocation: int) -> int:
        row = self.conn.execute("SELECT COUNT(*) FROM items WHERE invocation=?", (invocation,)).fetchone()
        return int(row[0])


_RECORDS_QUERY = (
    "SELECT i.generation_key, s.data, p.data, g.data, pa.data, i.sample FROM items i "
    "JOIN probes p ON p.key = i.probe_key JOIN samples s ON s.key = p.sample_key "
    "JOIN generations g ON g.key = i.generation_key "
    "LEFT JOIN parsed pa ON pa.generation_key = i.generation_key "
    "WHERE i.invocation = ? ORDER BY i.seq"
)
_SCORES_QUERY = (
    "SELECT sc.part, sc.judge, j.data FROM scores sc JOIN judgements j ON j.key = sc.judgement_key "
    "WHERE sc.generation_key = ?"
)


def _iter_records(conn: sqlite3.Connection, invocation: int, offset: int = 0, limit: int = -1) -> Iterator[Record]:
    query = _RECORDS_QUERY + " LIMIT ? OFFSET ?"
    reader = conn.cursor()
    for gen_key, sample_json, probe_json, gen_json, parsed_json, sample_index in reader.execute(
        query, (invocation, limit, offset)
    ):
        generation = Generation.model_validate_json(gen_json)
        parsed = (
            ParsedOutput.model_validate_json(parsed_json)
            if parsed_json
            else ParsedOutput(raw=generation.text, reasoning="", answer="", status="error", parser="none")
        )
        judgements = {
            (Part(part), judge): Judgement.model_validate_json(data)
            for part, judge, data in conn.execute(_SCORES_QUERY, (gen_key,))
        }
        yield Record(
            sample=Sample.model_validate_json(sample_json),
            probe=Probe.model_validate_json(probe_json),
            generation=generation,
            parsed=parsed,
            judgements=judgements,
            sample_index=int(sample_index),
        )


class StoredRecords(Sequence[Record]):
    """The records of one invocation, read from the store on every pass instead of held in memory.

    What ``load_run`` gives for a large run: each iteration streams the rows (a few MB at a time),
    so analyses that walk the records keep flat memory. ``len`` is known up front; indexing reads
    the rows it needs.
    """

    def __init__(self, path: Path, invocation: int, count: int) -> None:
        self.path = path
        self.invocation = invocation
        self._count = count

    def __len__(self) -> int:
        return self._count

    def _read(self, offset: int, limit: int) -> list[Record]:
        conn = connect(self.path, readonly=True)
        try:
            return list(_iter_records(conn, self.invocation, offset, limit))
        finally:
            conn.close()

    def __iter__(self) -> Iterator[Record]:
        conn = connect(self.path, readonly=True)
        try:
            yield from _iter_records(conn, self.invocation)
        finally:
            conn.close()

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Record]: ...

    def __getitem__(self, index: int | slice) -> Record | Sequence[Record]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._count)
            if step != 1:
                return self._read(start, max(0, stop - start))[::step]
            return self._read(start, max(0, stop - start))
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("record index out of range")
        return self._read(index, 1)[0]


def load_run(run_dir: str | Path, *, stream: bool = True) -> RunData:
    """Rebuild everything a report needs from a run directory's store alone.

    ``records`` is a ``StoredRecords`` sequence, streamed from the store on each pass, at every size:
    one path, whose memory does not grow with the records' texts (a list held about 11 KB per record
    more, and a size switch gave two code paths with different peaks). ``stream=False`` gives a list,
    for callers that edit the records.
    """
    store = RunStore(run_dir, create=False)
    try:
        store.mark_dead_invocations()  # a killed run's report says so, even before it is resumed
        latest = store.latest_invocation()
        if latest is None:
            raise StoreError(f"{run_dir}: the run has not planned any work yet")
        config = latest["config"]
        target_infos = store.target_infos()
        judge_infos = store.judge_infos()
        targets = [target_infos[t["name"]] for t in config.get("targets", []) if t["name"] in target_infos]
        judges = [
            judge_infos[label]
            for label in (j.get("name") or j["kind"] for j in config.get("judges", []))
            if label in judge_infos
        ]
        invocation = int(latest["id"])
        count = store.count_items(invocation)
        records: Sequence[Record] = (
            StoredRecords(store.path, invocation, count) if stream else list(store.iter_records(invocation))
        )
        return RunData(
            run_dir=str(run_dir),
            config=config,
            meta={
                "invocations": [{k: v for k, v in inv.items() if k != "config"} for inv in store.invocations()],
                "environment": latest["environment"],
                "seed": config.get("seed"),
                "store": store.counts(),
            },
            targets=targets,
            judges=judges,
            parts=[Part(p) for p in config.get("parts", [])],
            asr_threshold=float(config.get("asr_threshold", 4.0)),
            records=records,
        )
    finally:
        store.close()
