"""Persistent state of the reference server: API keys, creators, accounts, links.

The store is a single SQLite connection guarded by a re-entrant lock.  The
server is a test target, not a production system, so serialising every
operation is the simplest way to keep read-modify-write sequences (link,
idempotent create, quota check) atomic without reasoning about isolation.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["ORG_A", "ORG_B", "Principal", "Record", "ReferenceKeys", "Store", "StoredResponse"]

ORG_A = "org_a"
ORG_B = "org_b"

Record = dict[str, object]

_ENV_NAMES = {
    "api_key": "CREATORAUDIT_API_KEY",
    "readonly_api_key": "CREATORAUDIT_READONLY_API_KEY",
    "inactive_api_key": "CREATORAUDIT_INACTIVE_API_KEY",
    "other_org_api_key": "CREATORAUDIT_OTHER_ORG_API_KEY",
}


def _new_key() -> str:
    """Mint a key nobody can guess, so tests cannot pass by accident with a constant."""
    return "ca_live_" + secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Principal:
    """Who a valid API key speaks for, and what it may do."""

    org: str
    scopes: frozenset[str]
    active: bool

    def can_write(self) -> bool:
        """`admin` implies `write`, per the document's scope hierarchy."""
        return bool({"write", "admin"} & self.scopes)


@dataclass(frozen=True, repr=False)
class ReferenceKeys:
    """The four API keys the reference server recognises, one per auth situation."""

    api_key: str
    readonly_api_key: str
    inactive_api_key: str
    other_org_api_key: str

    def __repr__(self) -> str:
        """No key value: a repr ends up in tracebacks, cut where no masking finds it."""
        return "ReferenceKeys(<four keys>)"

    @classmethod
    def generate(cls) -> ReferenceKeys:
        """Random keys: each server instance gets its own unguessable credentials."""
        return cls(_new_key(), _new_key(), _new_key(), _new_key())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReferenceKeys:
        """Take keys from the CREATORAUDIT_*_API_KEY variables, generating missing ones.

        Lets a user pin the keys (e.g. to point a second tool at the same
        server) without having to supply all four.
        """
        env = os.environ if environ is None else environ
        values = {field: env.get(var) or _new_key() for field, var in _ENV_NAMES.items()}
        return cls(**values)

    def principals(self) -> dict[str, Principal]:
        """Map each key to its principal (org A: full, read-only, inactive; org B: full)."""
        full = frozenset({"read", "write", "admin"})
        return {
            self.api_key: Principal(ORG_A, full, True),
            self.readonly_api_key: Principal(ORG_A, frozenset({"read"}), True),
            self.inactive_api_key: Principal(ORG_A, full, False),
            self.other_org_api_key: Principal(ORG_B, full, True),
        }


@dataclass(frozen=True)
class StoredResponse:
    """The first successful answer to an idempotent POST, replayed on retries."""

    fingerprint: str
    status: int
    body: bytes
    location: str | None


_SCHEMA = """
CREATE TABLE creators (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    org TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE accounts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    org TEXT NOT NULL,
    platform TEXT NOT NULL,
    handle TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE links (
    account_id TEXT PRIMARY KEY,
    creator_id TEXT NOT NULL,
    linked_at TEXT NOT NULL
);
-- deleting a creator and listing its accounts look links up by creator
CREATE INDEX links_by_creator ON links (creator_id);
CREATE TABLE idempotency (
    org TEXT NOT NULL,
    route TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    location TEXT,
    PRIMARY KEY (org, route, key)
);
CREATE TABLE conflicted_accounts (account_id TEXT PRIMARY KEY);
"""


def utc_now() -> str:
    """RFC 3339 UTC timestamp with a `Z` suffix, the form clients parse most reliably."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _prefix_filter(name_prefix: str | None) -> tuple[str, tuple[object, ...]]:
    """Case-sensitive prefix match; substr avoids LIKE's wildcard escaping pitfalls."""
    if name_prefix is None:
        return "", ()
    return " AND substr(name, 1, length(?)) = ?", (name_prefix, name_prefix)


def _platform_filter(platform: str | None) -> tuple[str, tuple[object, ...]]:
    return ("", ()) if platform is None else (" AND platform = ?", (platform,))


def _public(row: sqlite3.Row) -> Record:
    """Strip storage-only columns (seq, org) so they never leak into responses."""
    return {k: row[k] for k in row.keys() if k not in ("seq", "org")}  # noqa: SIM118


class Store:
    """All reads and writes of the reference server's data."""

    def __init__(self, db_path: str = ":memory:") -> None:
        self._lock = threading.RLock()
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            exists = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='creators'"
            ).fetchone()
            if exists is None:
                self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Release the SQLite handle (avoids ResourceWarning in test runs)."""
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the lock and one SQLite transaction across a read-modify-write sequence."""
        with self._lock:
            if self._db.in_transaction:  # nested: the outer block owns commit/rollback
                yield
                return
            self._db.execute("BEGIN")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, params: tuple[object, ...]) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, params).fetchone()
            return row

    def _run(self, sql: str, params: tuple[object, ...]) -> int:
        with self.transaction():
            return self._db.execute(sql, params).rowcount

    # -- creators -----------------------------------------------------------------

    def create_creator(self, org: str, name: str) -> Record:
        """Insert a creator and return its public record."""
        cid, now = str(uuid.uuid4()), utc_now()
        self._run(
            "INSERT INTO creators (id, org, name, created_at) VALUES (?, ?, ?, ?)",
            (cid, org, name, now),
        )
        return {"id": cid, "name": name, "created_at": now}

    def get_creator(self, org: str, creator_id: str) -> Record | None:
        """A creator of `org`, or None: other orgs' creators are invisible."""
        row = self._one(
            "SELECT id, name, created_at FROM creators WHERE org = ? AND id = ?",
            (org, creator_id),
        )
        return None if row is None else _public(row)

    def delete_creator(self, org: str, creator_id: str) -> bool:
        """Delete a creator and its links; False if it was not there."""
        with self.transaction():
            gone = self._run("DELETE FROM creators WHERE org = ? AND id = ?", (org, creator_id))
            if gone:
                self._run("DELETE FROM links WHERE creator_id = ?", (creator_id,))
            return gone > 0

    def list_creators(
        self, org: str, name_prefix: str | None, after_seq: int, limit: int
    ) -> list[tuple[int, Record]]:
        """One page of creators in creation order, after the keyset position `after_seq`."""
        clause, params = _prefix_filter(name_prefix)
        return self._page("creators", "id, name, created_at", org, clause, params, after_seq, limit)

    def count_creators(self, org: str, name_prefix: str | None) -> int:
        """Total matching creators, for `include_total=true`."""
        return self._count("creators", org, *_prefix_filter(name_prefix))

    # -- accounts -----------------------------------------------------------------

    def create_account(self, org: str, platform: str, handle: str) -> Record:
        """Insert an account and return its public record."""
        aid, now = str(uuid.uuid4()), utc_now()
        self._run(
            "INSERT INTO accounts (id, org, platform, handle, created_at) VALUES (?, ?, ?, ?, ?)",
            (aid, org, platform, handle, now),
        )
        return {"id": aid, "platform": platform, "handle": handle, "created_at": now}

    def get_account(self, org: str | None, account_id: str) -> Record | None:
        """An account of `org` (or of any org when `org` is None), else None."""
        sql = "SELECT id, org, platform, handle, created_at FROM accounts WHERE id = ?"
        params: tuple[object, ...] = (account_id,)
        if org is not None:
            sql, params = sql + " AND org = ?", (account_id, org)
        row = self._one(sql, params)
        return None if row is None else _public(row)

    def delete_account(self, org: str, account_id: str) -> bool:
        """Delete an account and its link; False if it was not there."""
        with self.transaction():
            gone = self._run("DELETE FROM accounts WHERE org = ? AND id = ?", (org, account_id))
            if gone:
                self._run("DELETE FROM links WHERE account_id = ?", (account_id,))
            return gone > 0

    def list_accounts(
        self, org: str, platform: str | None, after_seq: int, limit: int
    ) -> list[tuple[int, Record]]:
        """One page of accounts in creation order, after the keyset position `after_seq`."""
        clause, params = _platform_filter(platform)
        columns = "id, platform, handle, created_at"
        return self._page("accounts", columns, org, clause, params, after_seq, limit)

    def count_accounts(self, org: str, platform: str | None = None) -> int:
        """Total matching accounts: used for `include_total` and for the quota check."""
        return self._count("accounts", org, *_platform_filter(platform))

    # -- shared list helpers --------------------------------------------------------

    def _page(
        self,
        table: str,
        columns: str,
        org: str,
        clause: str,
        params: tuple[object, ...],
        after_seq: int,
        limit: int,
    ) -> list[tuple[int, Record]]:
        sql = (
            f"SELECT seq, {columns} FROM {table} WHERE org = ? AND seq > ?{clause} "
            "ORDER BY seq, id LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(sql, (org, after_seq, *params, limit)).fetchall()
        return [(int(row["seq"]), _public(row)) for row in rows]

    def _count(self, table: str, org: str, clause: str, params: tuple[object, ...]) -> int:
        row = self._one(f"SELECT COUNT(*) AS n FROM {table} WHERE org = ?{clause}", (org, *params))
        return 0 if row is None else int(row["n"])

    # -- links ----------------------------------------------------------------------

    def get_link(self, account_id: str) -> Record | None:
        """The link of an account (an account belongs to at most one creator)."""
        row = self._one(
            "SELECT creator_id, account_id, linked_at FROM links WHERE account_id = ?",
            (account_id,),
        )
        return None if row is None else _public(row)

    def put_link(self, creator_id: str, account_id: str) -> Record:
        """Link (or move) an account to a creator, stamping a fresh `linked_at`."""
        now = utc_now()
        self._run(
            "INSERT INTO links (account_id, creator_id, linked_at) VALUES (?, ?, ?) "
            "ON CONFLICT(account_id) DO UPDATE SET creator_id = excluded.creator_id, "
            "linked_at = excluded.linked_at",
            (account_id, creator_id, now),
        )
        return {"creator_id": creator_id, "account_id": account_id, "linked_at": now}

    def delete_link(self, creator_id: str, account_id: str) -> bool:
        """Unlink; False if the account was not linked to that creator."""
        sql = "DELETE FROM links WHERE creator_id = ? AND account_id = ?"
        return self._run(sql, (creator_id, account_id)) > 0

    def mark_conflicted(self, account_id: str) -> None:
        """Remember that an account just saw a 409 (only the relink-after-conflict fault asks)."""
        self._run("INSERT OR IGNORE INTO conflicted_accounts VALUES (?)", (account_id,))

    def pop_conflicted(self, account_id: str) -> bool:
        """Forget and report whether the account saw a 409 since its last re-link."""
        sql = "DELETE FROM conflicted_accounts WHERE account_id = ?"
        return self._run(sql, (account_id,)) > 0

    # -- idempotency ------------------------------------------------------------------

    def get_idempotent(self, org: str, route: str, key: str) -> StoredResponse | None:
        """The stored first answer for (org, route, Idempotency-Key), if any."""
        row = self._one(
            "SELECT fingerprint, status, body, location FROM idempotency "
            "WHERE org = ? AND route = ? AND key = ?",
            (org, route, key),
        )
        if row is None:
            return None
        return StoredResponse(
            row["fingerprint"], row["status"], bytes(row["body"]), row["location"]
        )

    def save_idempotent(self, org: str, route: str, key: str, response: StoredResponse) -> None:
        """Remember a successful create so a retry replays it instead of duplicating."""
        self._run(
            "INSERT OR IGNORE INTO idempotency VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                org,
                route,
                key,
                response.fingerprint,
                response.status,
                response.body,
                response.location,
            ),
        )
