"""Counting and deleting every row of one job in the SQLite job store (``jobs prune``).

A job's rows are its ``jobs`` row and its ``events``, ``items`` and
``phases`` rows. :func:`delete_job_rows` removes them all in one write
transaction, child tables first, so that another process sees the job
either whole or gone; nothing of another job is touched (every statement
is keyed on ``job_id``). The tables' ``ON DELETE CASCADE`` would do the
same from the ``jobs`` row alone; deleting each table explicitly counts
what went and does not depend on ``PRAGMA foreign_keys`` being on.
"""

from __future__ import annotations

import sqlite3
from typing import final

import attrs

from envs.store_schema import write_transaction

__all__ = ["JOB_TABLES", "JobRows", "count_job_rows", "delete_job_rows"]

JOB_TABLES = ("events", "items", "phases", "jobs")
"""The tables holding a job's rows, in the order they are deleted (``jobs`` last)."""


@final
@attrs.frozen
class JobRows:
    """How many rows of one job each table holds (or held, before a deletion).

    ``jobs`` is 1 for a job in the store and 0 for an unknown one.
    """

    jobs: int = 0
    events: int = 0
    items: int = 0
    phases: int = 0

    @property
    def total(self) -> int:
        return self.jobs + self.events + self.items + self.phases

    def to_json(self) -> dict[str, int]:
        return attrs.asdict(self)


def count_job_rows(connection: sqlite3.Connection, job_id: str) -> JobRows:
    """The rows of ``job_id`` in each table (all 0 for an unknown job); reads only."""
    counts = {
        table: connection.execute(
            f"SELECT count(*) FROM {table} WHERE job_id = ?", (job_id,)
        ).fetchone()[0]
        for table in JOB_TABLES
    }
    return JobRows(**counts)


def delete_job_rows(connection: sqlite3.Connection, job_id: str) -> JobRows:
    """Delete every row of ``job_id`` in one write transaction; the rows each table lost.

    An unknown job deletes nothing and gives all zeros. A failure rolls the
    whole deletion back (the job stays as it was) and propagates.
    """
    with write_transaction(connection):
        counts = {
            table: connection.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,)).rowcount
            for table in JOB_TABLES
        }
    return JobRows(**counts)
