"""The job database's schema: opening and migrating it, and the tables it keeps from events.

A forkmerge job database is a SQLite file marked with forkmerge's
``application_id`` and a schema version in ``user_version``. Opening one is
done in two steps so that a file forkmerge cannot read is never changed:

1. a read-only look (the first bytes, then the two marks and whether the
   file already holds tables of its own): a file that is not SQLite, another
   program's database, or a schema newer than :data:`SCHEMA_VERSION` is a
   :class:`StoreError`, and nothing has been written;
2. only then a read-write connection: WAL mode, the synchronous level,
   foreign keys, a busy timeout, and the migrations from the file's version
   up to :data:`SCHEMA_VERSION`, in one ``BEGIN IMMEDIATE`` transaction that
   looks at the version again (another process may have migrated meanwhile).

A migration is a function of the connection, run inside that transaction;
migration ``n`` (counting from 1) takes a database from version ``n - 1`` to
``n``. Add one to the end of :data:`MIGRATIONS` to change the schema; never
edit one that has shipped.

The ``items`` and ``phases`` tables are the job's state as its events left
it: :func:`record_event` changes them in the transaction that inserts each
event, checking the event with :func:`pure.job_state.apply` on a one-row
state, so a row always equals what ``fold(events)`` gives.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import MappingProxyType
from typing import Literal, final

from pure.job_events import (
    ItemEvent,
    ItemStarted,
    JobEvent,
    JobPlanned,
    PhaseFinished,
    PhaseStarted,
)
from pure.job_state import InvalidTransition, ItemRecord, ItemStatus, JobState, PhaseStatus, apply
from pure.persistent_vector import PersistentVector

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "StoreError",
    "Synchronous",
    "open_database",
    "record_event",
    "write_transaction",
]

APPLICATION_ID = 0x666D7267
"""``PRAGMA application_id`` of a forkmerge job database: ``"fmrg"`` in ASCII."""

Synchronous = Literal["FULL", "NORMAL"]

_SQLITE_HEADER = b"SQLite format 3\x00"


@final
class StoreError(Exception):
    """The job database at ``path`` cannot be used: ``message`` says why, in one line.

    Raised when the file is not a forkmerge job database, has a newer schema,
    is locked for longer than the busy timeout, or a read or write fails. The
    file is left as it was.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(path, message)
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return f"job database {self.path} {self.message}"


@contextmanager
def write_transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """A write transaction, taken at once (``BEGIN IMMEDIATE``), committed or rolled back.

    Taking the write lock at the start (not at the first write) means a
    writer waits for another process's writer under the busy timeout instead
    of failing with a deadlock when it upgrades a read.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def _create_version_1(connection: sqlite3.Connection) -> None:
    """Jobs, their append-only event log, and the per-item and per-phase tables kept from it."""
    statements = (
        """CREATE TABLE jobs (
            job_id TEXT PRIMARY KEY NOT NULL,
            workflow_name TEXT NOT NULL,
            workflow_path TEXT NOT NULL,
            workflow_hash TEXT NOT NULL,
            input_hash TEXT,
            repository TEXT NOT NULL,
            job_branch TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            total INTEGER NOT NULL DEFAULT 0 CHECK (total >= 0),
            options_json TEXT NOT NULL DEFAULT '{}',
            runs_duration REAL NOT NULL DEFAULT 0 CHECK (runs_duration >= 0),
            planned INTEGER NOT NULL DEFAULT 0 CHECK (planned IN (0, 1))
        )""",
        "CREATE INDEX jobs_by_creation ON jobs (created_at DESC)",
        """CREATE TABLE events (
            job_id TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
            seq INTEGER NOT NULL CHECK (seq >= 1),
            kind TEXT NOT NULL,
            at REAL NOT NULL,
            payload TEXT NOT NULL,
            PRIMARY KEY (job_id, seq)
        ) WITHOUT ROWID""",
        """CREATE TRIGGER events_are_append_only BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END""",
        """CREATE TABLE items (
            job_id TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
            item_key TEXT NOT NULL,
            idx INTEGER NOT NULL CHECK (idx >= 0),
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            duration REAL NOT NULL DEFAULT 0,
            started_at REAL,
            last_error TEXT,
            skip_reason TEXT,
            agent_branch TEXT,
            merge_commit TEXT,
            updated_at REAL NOT NULL,
            PRIMARY KEY (job_id, item_key),
            UNIQUE (job_id, idx)
        ) WITHOUT ROWID""",
        "CREATE INDEX items_by_status ON items (job_id, status)",
        """CREATE TABLE phases (
            job_id TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
            phase TEXT NOT NULL,
            status TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (job_id, phase)
        ) WITHOUT ROWID""",
    )
    for statement in statements:
        connection.execute(statement)


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_create_version_1,)
"""Migration ``n`` (index ``n - 1``) takes the schema from version ``n - 1`` to ``n``."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this forkmerge writes and understands (and every older one)."""


# -- keeping the derived tables in step with the log ------------------------------------


_ONE_ITEM_COUNTS = {
    status: tuple(int(other is status) for other in ItemStatus) for status in ItemStatus
}


def _one_item_state(record: ItemRecord) -> JobState:
    """A planned job holding just ``record``: what :func:`apply` needs to check an item event."""
    return JobState(
        item_keys=(record.key,),
        records=PersistentVector.of((record,)),
        counts=_ONE_ITEM_COUNTS[record.status],
        planned=True,
        positions=MappingProxyType({record.key: 0}),
    )


def _plan(
    connection: sqlite3.Connection, job_id: str, event: JobPlanned, planned: bool, at: float
) -> None:
    """Insert the items of ``event``, all pending, in plan order."""
    if planned:
        (known,) = connection.execute(
            "SELECT count(*) FROM items WHERE job_id = ?", (job_id,)
        ).fetchone()
        raise InvalidTransition(event, f"job-planned again: the job already has {known} items")
    if len(set(event.item_keys)) != len(event.item_keys):
        apply(JobState(), event)  # raises InvalidTransition naming the repeated key
    connection.executemany(
        "INSERT INTO items (job_id, item_key, idx, status, updated_at) VALUES (?, ?, ?, ?, ?)",
        (
            (job_id, key, index, ItemStatus.PENDING.value, at)
            for index, key in enumerate(event.item_keys)
        ),
    )
    connection.execute(
        "UPDATE jobs SET planned = 1, total = ? WHERE job_id = ?", (len(event.item_keys), job_id)
    )


def _record_phase(
    connection: sqlite3.Connection, job_id: str, event: PhaseStarted | PhaseFinished, at: float
) -> None:
    row = connection.execute(
        "SELECT status FROM phases WHERE job_id = ? AND phase = ?", (job_id, event.phase)
    ).fetchone()
    before = {} if row is None else {event.phase: PhaseStatus(row[0])}
    after = apply(JobState(phases=MappingProxyType(before)), event).phases[event.phase]
    connection.execute(
        "INSERT OR REPLACE INTO phases (job_id, phase, status, updated_at) VALUES (?, ?, ?, ?)",
        (job_id, event.phase, after.value, at),
    )


def _record_item(
    connection: sqlite3.Connection, job_id: str, event: ItemEvent, at: float, planned: bool
) -> None:
    row = connection.execute(
        "SELECT status, attempts, duration, started_at, last_error, skip_reason, merge_commit "
        "FROM items WHERE job_id = ? AND item_key = ?",
        (job_id, event.item_key),
    ).fetchone()
    if row is None:
        if not planned:
            apply(JobState(), event)  # raises: an item event before the job was planned
        (known,) = connection.execute(
            "SELECT count(*) FROM items WHERE job_id = ?", (job_id,)
        ).fetchone()
        raise InvalidTransition(
            event, f"{event.KIND} for unknown item {event.item_key!r} (the job has {known} items)"
        )
    status, attempts, duration, started_at, last_error, skip_reason, merge_commit = row
    before = ItemRecord(
        event.item_key,
        ItemStatus(status),
        attempts,
        merge_commit=merge_commit,
        error=last_error,
        skip_reason=skip_reason,
    )
    after = apply(_one_item_state(before), event).records[0]
    # an attempt ends with any event but a restart, whose predecessor's end is unknown
    if before.status is ItemStatus.RUNNING and not isinstance(event, ItemStarted):
        duration += max(0.0, at - started_at)
    connection.execute(
        "UPDATE items SET status = ?, attempts = ?, duration = ?, started_at = ?, "
        "last_error = ?, skip_reason = ?, merge_commit = ?, updated_at = ? "
        "WHERE job_id = ? AND item_key = ?",
        (
            after.status.value,
            after.attempts,
            duration,
            at if after.status is ItemStatus.RUNNING else None,
            after.error,
            after.skip_reason,
            after.merge_commit,
            at,
            job_id,
            event.item_key,
        ),
    )


def record_event(
    connection: sqlite3.Connection, job_id: str, event: JobEvent, at: float, planned: bool
) -> None:
    """Bring the ``items`` or ``phases`` rows of ``job_id`` in step with ``event``.

    Called in the transaction that inserts ``event`` into ``events``;
    ``planned`` says whether the job was planned before it. Raises
    :class:`~pure.job_state.InvalidTransition` (leaving the rollback to the
    caller) when ``event`` cannot follow the rows' state.
    """
    if isinstance(event, JobPlanned):
        _plan(connection, job_id, event, planned, at)
    elif isinstance(event, PhaseStarted | PhaseFinished):
        _record_phase(connection, job_id, event, at)
    else:
        _record_item(connection, job_id, event, at, planned)


# -- opening --------------------------------------------------------------------------------


def _looks_like_sqlite(path: str) -> bool:
    """Whether the file is empty (SQLite makes it a database) or starts with SQLite's header."""
    with open(path, "rb") as file:
        head = file.read(len(_SQLITE_HEADER))
    return head in (b"", _SQLITE_HEADER)


def _marks(connection: sqlite3.Connection) -> tuple[int, int, int]:
    """The file's application id, schema version and number of schema objects."""
    application_id = connection.execute("PRAGMA application_id").fetchone()[0]
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    objects = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    return int(application_id), int(version), int(objects)


def _refusal(marks: tuple[int, int, int]) -> str | None:
    """Why a database with these marks cannot be used; ``None``: fresh, or ours and not newer."""
    application_id, version, objects = marks
    if application_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            return (
                f"has schema version {version}, newer than this forkmerge understands "
                f"({SCHEMA_VERSION}); upgrade forkmerge"
            )
        return None
    if application_id != 0:
        return (
            "is not a forkmerge job database "
            f"(it belongs to another program: application_id {application_id:#x})"
        )
    if version != 0 or objects != 0:
        return (
            "is not a forkmerge job database "
            f"(a SQLite database of another program: {objects} schema objects, no forkmerge mark)"
        )
    return None


def _inspect_read_only(path: str) -> None:
    """Refuse an existing file forkmerge cannot use, without writing to it."""
    if not _looks_like_sqlite(path):
        raise StoreError(path, "is not a forkmerge job database (file is not a database)")
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro"
    try:
        probe = sqlite3.connect(uri, uri=True, check_same_thread=False)
    except sqlite3.Error as error:
        raise StoreError(path, f"cannot be opened ({error})") from None
    try:
        marks = _marks(probe)
    except sqlite3.DatabaseError as error:
        raise StoreError(path, f"is not a forkmerge job database ({error})") from None
    finally:
        probe.close()
    refusal = _refusal(marks)
    if refusal is not None:
        raise StoreError(path, refusal)


def _configure(
    connection: sqlite3.Connection, path: str, synchronous: Synchronous, busy_timeout_ms: int
) -> None:
    connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    connection.execute("PRAGMA foreign_keys = ON")
    mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(path, f"cannot use write-ahead logging (journal mode stays {mode!r})")
    connection.execute(f"PRAGMA synchronous = {synchronous}")


def _migrate(connection: sqlite3.Connection, path: str) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION` in one transaction (a no-op when it is)."""
    with write_transaction(connection):
        marks = _marks(connection)
        refusal = _refusal(marks)
        if refusal is not None:
            raise StoreError(path, refusal)
        version = marks[1]
        for migration in MIGRATIONS[version:]:
            migration(connection)
        if version < SCHEMA_VERSION:
            connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def open_database(
    path: str, *, synchronous: Synchronous = "FULL", busy_timeout: float = 10.0
) -> sqlite3.Connection:
    """A read-write connection to the job database at ``path``, created or migrated as needed.

    The parent directories are created. The connection is in autocommit
    mode (callers open their own transactions) and may be used from any
    thread, one at a time. Raises :class:`StoreError` for a file that
    cannot be used, leaving it untouched; ``busy_timeout`` is in seconds.
    """
    if busy_timeout < 0:
        raise ValueError(f"`busy_timeout` must be non-negative, got {busy_timeout}")
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        if os.path.exists(path):
            _inspect_read_only(path)
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except OSError as error:
        raise StoreError(path, f"cannot be opened ({error.strerror or error})") from None
    except sqlite3.Error as error:
        raise StoreError(path, f"cannot be opened ({error})") from None
    try:
        _configure(connection, path, synchronous, round(busy_timeout * 1000))
        _migrate(connection, path)
    except sqlite3.DatabaseError as error:
        connection.close()
        raise StoreError(path, f"cannot be opened ({error})") from None
    except BaseException:
        connection.close()
        raise
    return connection
