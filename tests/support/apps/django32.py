"""The real Django 3.2.25 (the last Django for RHEL 7's python 3.6), installed into the
look-alike's venv from PyPI's wheels (support.apps.real_site): its sqlite3 backend refuses
SQLite < 3.9.0 as it is imported (django/db/backends/sqlite3/base.py, check_sqlite_version(),
raising ImproperlyConfigured). Not a reproduction: this runs Django's own code."""

import django
from django.conf import settings

settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
)
django.setup()

from django.db import connection  # noqa: E402

with connection.cursor() as cursor:
    cursor.execute("SELECT sqlite_version()")
    (version,) = cursor.fetchone()
print(f"django32: ok with SQLite {version}")
