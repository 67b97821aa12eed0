"""Real applications that refuse an old SQLite (../shared/reference/USERS.md), as scripts a
look-alike host's python runs. Each exits non-zero with the application's own exception and
message when the SQLite that python loads is too old, and otherwise uses it and prints
`<app>: ok with SQLite X.Y.Z`. Not imported by the tests: the look-alike tier copies this folder
into the root and runs the scripts there.

- APPS: the checks of Prefect 2, Django 5.1 and chromadb, each reproduced line for line from the
  released source it cites, then the SQL the application needs that version for. None of them
  installs on the python of the host it stands for (Prefect 2 and Django 5.1 need a newer
  python than RHEL 7/8's 3.6; chromadb 0.5 pulls in onnxruntime, numpy, grpcio and a hundred
  more packages, well beyond the CI budget).
- REAL_APPS: a real package, installed from PyPI's wheels (pinned by hash, downloaded once into
  build/look-alike/), whose own code refuses the host's SQLite: Django 3.2 on RHEL 7's 3.7.17.
"""

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, NamedTuple, Tuple

from support import unavailable


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


class RealApp(NamedTuple):
    title: str
    script: str  # run by the venv's python, into which `wheels` are unpacked
    refusal: str  # what its own message says on the host's old SQLite
    python: Tuple[str, str, str]  # (--python-version, --abi, --platform) for pip download
    wheels: Tuple[Tuple[str, str], ...]  # (requirement, sha256): pure-python wheels


REAL_APPS: Dict[str, RealApp] = {
    "django32": RealApp(
        "Django 3.2.25",
        "django32.py",
        "SQLite 3.9.0 or later is required (found 3.7.17)",
        ("3.6", "cp36m", "manylinux2014_x86_64"),
        (
            ("Django==3.2.25", "a52ea7fcf280b16f7b739cec38fa6d3f8953a5456986944c3ca97e79882b4e38"),
            ("asgiref==3.4.1", "ffc141aa908e6f175673e7b1b3b7af4fdb0ecb738fc5c8b88f69f055c2415214"),
            ("pytz==2025.2", "5ddf76296dd8c44c26eb8f4b6f35488f3ccbf6fbbd7adee0b7262d43f0ec2f00"),
            ("sqlparse==0.4.4", "5430a4fe2ac7d0f93e66f1efc6e1338a41884b7ddf2a350cedd20ccc4d9d28f3"),
            (
                "typing_extensions==4.1.1",
                "21c85e0fe4b9a155d0799430b0ad741cdce7e359660ccbd8b530613e8df88ce2",
            ),
        ),
    ),
}


def real_site(app: RealApp, cache: Path) -> Path:
    """cache/<script>-site: the app's wheels unpacked as pip would into site-packages (pure
    python, so unzipping is installing), downloaded from PyPI once and checked by hash."""
    site = cache / (Path(app.script).stem + "-site")
    if (site / ".done").is_file():
        return site
    cache.mkdir(parents=True, exist_ok=True)
    version, abi, platform = app.python
    with tempfile.TemporaryDirectory(dir=str(cache)) as scratch:
        work = Path(scratch)
        requirements = work / "requirements.txt"
        requirements.write_text("".join(f"{r} --hash=sha256:{h}\n" for r, h in app.wheels))
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes",
             "--only-binary=:all:", "--python-version", version, "--implementation", "cp",
             "--abi", abi, "--platform", platform, "--disable-pip-version-check",
             "-r", str(requirements), "-d", str(work / "wheels")],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        wheels = sorted((work / "wheels").glob("*.whl"))
        if done.returncode != 0 or len(wheels) != len(app.wheels):
            unavailable(f"cannot download {app.title} from PyPI: {done.stderr.strip()[-500:]}")
        unpacked = work / "site"
        for wheel in wheels:
            with zipfile.ZipFile(str(wheel)) as archive:
                if any(
                    ".." in Path(name).parts or name.startswith("/") for name in archive.namelist()
                ):
                    raise RuntimeError(f"unsafe member in {wheel.name}")
                archive.extractall(str(unpacked))
        (unpacked / ".done").write_text(app.title + "\n")
        shutil.rmtree(str(site), ignore_errors=True)
        unpacked.rename(site)
    return site
