"""Real applications' checks that refuse an old SQLite (../shared/reference/USERS.md), each
reproduced line for line from the released source it cites, as a script a look-alike host's
python runs: none of these applications installs on the python of the host it stands for
(Prefect 2 and Django 5.1 need a newer python than RHEL 7/8's 3.6; chromadb 0.5 pulls in
onnxruntime, numpy, grpcio and a hundred more packages, well beyond the CI budget).

Each script exits non-zero with the application's own exception and message when the SQLite
that python loads is too old, and otherwise runs the SQL the application needs that version
for, and prints `<app>: ok with SQLite X.Y.Z`. Not imported by the tests: the look-alike tier
copies this folder into the root (APPS_DIR) and runs the scripts there.
"""

from pathlib import Path
from typing import Dict, NamedTuple


class App(NamedTuple):
    title: str  # the application and version whose check is reproduced
    minimum: str  # the SQLite it refuses to run below
    script: str  # the file name in this folder
    refusal: str  # what its message says when it refuses
    names_found: bool  # whether that message names the version it found


HERE = Path(__file__).resolve().parent

APPS: Dict[str, App] = {
    "prefect2": App(
        "Prefect 2.20.27", "3.24.0", "prefect2.py", "Prefect requires sqlite >= 3.24.0", True
    ),
    "django51": App(
        "Django 5.1.15", "3.31", "django51.py", "SQLite 3.31 or later is required", True
    ),
    "chromadb": App(
        "chromadb 0.5.23",
        "3.35.0",
        "chromadb.py",
        "Your system has an unsupported version of sqlite3",
        False,
    ),
}
