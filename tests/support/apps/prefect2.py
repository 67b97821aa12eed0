"""Prefect 2's check, from PrefectHQ/prefect 2.20.27 (the last 2.x, wheel
prefect-2.20.27-py3-none-any.whl), src/prefect/server/database/configurations.py:

- line 296: `MIN_SQLITE_VERSION = (3, 24, 0)` (class AioSqliteConfiguration);
- lines 313-318, in AioSqliteConfiguration.engine(), before any engine is made: the comparison
  and the RuntimeError below, word for word.

Then the statement 3.24 brought and Prefect's server relies on: an UPSERT
(INSERT ... ON CONFLICT DO UPDATE). Prefect 2 needs Python >= 3.7, so it cannot be installed on
RHEL 7's python3 (3.6); this script is its check.
"""

import sqlite3


class AioSqliteConfiguration:
    MIN_SQLITE_VERSION = (3, 24, 0)

    def engine(self) -> sqlite3.Connection:
        if sqlite3.sqlite_version_info < self.MIN_SQLITE_VERSION:
            required = ".".join(str(v) for v in self.MIN_SQLITE_VERSION)
            raise RuntimeError(
                f"Prefect requires sqlite >= {required} but we found version "
                f"{sqlite3.sqlite_version}"
            )
        return sqlite3.connect(":memory:")


db = AioSqliteConfiguration().engine()
db.execute("CREATE TABLE flow_run_state (id TEXT PRIMARY KEY, name TEXT)")
upsert = (
    "INSERT INTO flow_run_state (id, name) VALUES (?, ?) "
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name"
)
db.execute(upsert, ("a", "Pending"))
db.execute(upsert, ("a", "Running"))
assert db.execute("SELECT name FROM flow_run_state").fetchall() == [("Running",)]
print(f"prefect2: ok with SQLite {sqlite3.sqlite_version}")
