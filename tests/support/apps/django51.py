"""Django 5.1's check, from django/django 5.1.15 (wheel django-5.1.15-py3-none-any.whl):

- django/db/backends/sqlite3/features.py, line 12: `minimum_database_version = (3, 31)`;
- django/db/backends/sqlite3/base.py, lines 195-196: get_database_version() returns
  `self.Database.sqlite_version_info` (Database is the sqlite3 module);
- django/db/backends/base/base.py, lines 189-203: check_database_version_supported(), word for
  word below, raising django.db.utils.NotSupportedError; init_connection_state() calls it
  (line 224) on the first connection, right after get_new_connection().

Then the feature 3.31 brought that Django 5.x models can use: a generated column
(GeneratedField). Django 5.1 needs Python >= 3.10, so it cannot be installed on RHEL 8's python3
(3.6); this script is its check.
"""

import sqlite3 as Database


class NotSupportedError(Database.DatabaseError):
    """django.db.utils.NotSupportedError"""


class DatabaseWrapper:
    display_name = "SQLite"
    minimum_database_version = (3, 31)  # features.minimum_database_version

    def get_database_version(self) -> tuple:  # type: ignore[type-arg]
        return Database.sqlite_version_info

    def check_database_version_supported(self) -> None:
        """
        Raise an error if the database version isn't supported by this
        version of Django.
        """
        if (
            self.minimum_database_version is not None
            and self.get_database_version() < self.minimum_database_version
        ):
            db_version = ".".join(map(str, self.get_database_version()))
            min_db_version = ".".join(map(str, self.minimum_database_version))
            raise NotSupportedError(
                f"{self.display_name} {min_db_version} or later is required (found {db_version})."
            )

    def connect(self) -> Database.Connection:
        connection = Database.connect(":memory:")  # get_new_connection()
        self.check_database_version_supported()  # init_connection_state()
        return connection


db = DatabaseWrapper().connect()
db.execute("CREATE TABLE item (price INTEGER, quantity INTEGER, "
           "total INTEGER GENERATED ALWAYS AS (price * quantity) STORED)")  # fmt: skip
db.execute("INSERT INTO item (price, quantity) VALUES (3, 4)")
assert db.execute("SELECT total FROM item").fetchall() == [(12,)]
print(f"django51: ok with SQLite {Database.sqlite_version}")
