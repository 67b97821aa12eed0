"""Build once, deploy many: a real artifact built from the 3.44.2 tarball, installed into fresh
prefixes with no compiler run, and refused when altered (exit 4) or made for another host (exit 3).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Callable, Dict, List

import pytest

from support.artifacts import BUILT_BY, Artifact
from support.clirun import PYTHON, Run, check_plan_ran, run_cli, tool_env
from support.compilers import calls, recording_wrappers
from support.mirror import Mirror
from support.snapshot import diff, snapshot

pytestmark = pytest.mark.integration


class Built:
    def __init__(self, path: Path, run: Run) -> None:
        self.path = path
        self.run = run


@pytest.fixture(scope="module")
def built(sqlite_mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("artifact")
    out = root / "dist" / "sqlite-3.44.2.tar.gz"
    run = run_cli(
        ["build", "--version", "3.44.2", "--mirror", sqlite_mirror.url,
         "--prefix-root", str(root / "built-for"), "--artifact", str(out), "--json"],
        tool_env(root / "state"),
    )  # fmt: skip
    assert run.proc.returncode == 0, run.describe()
    assert not (root / "built-for").exists(), "build must not install anything"
    return Built(out, run)


def recording_path(tmp: Path) -> str:
    """PATH with gcc, cc and make wrappers first that record any call and fail."""
    return recording_wrappers(tmp / "wrappers", tmp / "compiler-calls", run_real=False)


def install(artifact: Path, root: Path, *extra: str, path: str = "") -> Run:
    env = tool_env(root / "state", path or None)
    return run_cli(
        ["install", "--artifact", str(artifact), "--prefix-root", str(root / "opt"),
         "--profile-file", str(root / "p.sh"), "--python", PYTHON, "--json", *extra],
        env,
    )  # fmt: skip


def test_build_writes_artifact_checksum_and_metadata(built: Built) -> None:
    assert_artifact(built.path, built.run, "3.44.2")


@pytest.mark.parametrize("version", sorted(BUILT_BY))
def test_the_pyz_builds_write_the_same_artifact(
    artifacts: Dict[str, Artifact], version: str
) -> None:
    """The session's artifacts, built through the shipped pyz on CPython 3.6 and 3.13."""
    made = artifacts[version]
    assert made.launcher.is_pyz and made.launcher.name == BUILT_BY[version]
    assert_artifact(made.path, made.run, version)


@pytest.mark.parametrize("version", sorted(BUILT_BY))
def test_each_eras_dry_run_shows_the_commands_its_build_ran(
    artifacts: Dict[str, Artifact], version: str
) -> None:
    """Both build-system eras (3.44.2 autoconf, 3.52.0 autosetup), built for real through the
    pyz: `build --dry-run --json` showed exactly the commands the build's log records, the
    probe of configure's options, configure's predicted options and make's line included."""
    made = artifacts[version]
    plan = made.dry_run.data
    assert made.dry_run.proc.returncode == 0 and plan["dry_run"] is True, made.dry_run.describe()
    ran = [s["name"] for s in made.run.data["steps"] if s["status"] == "ok"]
    assert {"probe-configure", "configure", "make", "stage"} <= set(ran), ran
    check_plan_ran(plan, Path(made.run.data["log_file"]), ran)
    make = next(s for s in plan["steps"] if s["name"] == "make")
    overlay = "-f Makefile -f sqlite-provision-shell.mk" in make["commands"][0]
    assert overlay is (version == "3.52.0")  # the autosetup era's shell.c overlay


def assert_artifact(path: Path, run: Run, version: str) -> None:
    data = run.data
    assert data["artifact"] == str(path)
    sidecar = Path(str(path) + ".sha256").read_text().split()
    assert sidecar == [hashlib.sha256(path.read_bytes()).hexdigest(), path.name]
    with tarfile.open(str(path)) as tar:
        meta = json.loads(tar.extractfile("metadata.json").read())  # type: ignore[union-attr]
        names = tar.getnames()
    assert meta["version"] == version
    assert meta["arch"] and meta["glibc_min"].startswith("2.")
    assert "sqlite3_column_table_name" in meta["symbols"]
    assert "ENABLE_COLUMN_METADATA" in meta["build"]["compile_options"]
    assert "tree/lib/libsqlite3.so.0" in names
    for rel, digest in meta["files"].items():
        assert f"tree/{rel}" in names
        assert digest is None or len(digest) == 64


def test_round_trip_without_a_compiler(built: Built, tmp_path: Path) -> None:
    run = install(built.path, tmp_path, path=recording_path(tmp_path))
    assert run.proc.returncode == 0, run.describe()
    data = run.data
    assert data["changed"] is True
    assert data["verified"][0]["sqlite_version"] == "3.44.2"
    assert data["verified"][0]["library"].startswith(str(tmp_path / "opt" / "3.44.2"))
    assert calls(tmp_path / "compiler-calls") == []
    assert "install-compiler" not in [s["name"] for s in data["steps"]]
    pc = (tmp_path / "opt" / "3.44.2" / "lib" / "pkgconfig" / "sqlite3.pc").read_text()
    assert f"prefix={tmp_path / 'opt' / '3.44.2'}" in pc  # relocated from the build's prefix
    print(f"artifact install: {run.seconds:.2f}s")
    again = install(built.path, tmp_path)
    assert again.proc.returncode == 0, again.describe()
    assert again.data["changed"] is False
    # Installed already, and still a bad copy of the artifact is said, not passed over as
    # "nothing to do" (a fleet's re-run must notice a damaged copy): exit 4, nothing changed.
    data = bytearray(built.path.read_bytes())
    data[len(data) // 3] ^= 0x01
    bad = tmp_path / "bad" / built.path.name
    bad.parent.mkdir()
    bad.write_bytes(bytes(data))
    Path(str(bad) + ".sha256").write_text(Path(str(built.path) + ".sha256").read_text())
    before = snapshot([tmp_path / "opt", tmp_path / "p.sh"])
    assert_refused(install(bad, tmp_path), 4, "checksum mismatch", before, tmp_path)


def altered(built: Built, tmp_path: Path, change: Callable[[Dict[str, bytes]], None]) -> Path:
    """A copy of the artifact with its members changed by `change`, and a matching .sha256."""
    members: Dict[str, bytes] = {}
    infos: List[tarfile.TarInfo] = []
    with tarfile.open(str(built.path)) as tar:
        for info in tar.getmembers():
            infos.append(info)
            if info.isfile():
                members[info.name] = tar.extractfile(info).read()  # type: ignore[union-attr]
    change(members)
    out = tmp_path / "altered.tar.gz"
    with tarfile.open(str(out), "w:gz") as tar:
        for info in infos:
            if info.isfile():
                info.size = len(members[info.name])
                tar.addfile(info, io.BytesIO(members[info.name]))
            else:
                tar.addfile(info)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    Path(str(out) + ".sha256").write_text(f"{digest}  {out.name}\n")
    return out


def assert_refused(run: Run, code: int, words: str, before: dict, tmp_path: Path) -> None:
    assert run.proc.returncode == code, run.describe()
    assert words in run.proc.stderr, run.proc.stderr
    assert diff(before, snapshot([tmp_path / "opt", tmp_path / "p.sh"])) == {}


def test_one_byte_changed_is_refused(built: Built, tmp_path: Path) -> None:
    data = bytearray(built.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(bytes(data))
    Path(str(bad) + ".sha256").write_text(Path(str(built.path) + ".sha256").read_text())
    before = snapshot([tmp_path / "opt", tmp_path / "p.sh"])
    assert_refused(install(bad, tmp_path), 4, "checksum mismatch", before, tmp_path)


def test_file_changed_inside_is_refused(built: Built, tmp_path: Path) -> None:
    def flip(members: Dict[str, bytes]) -> None:
        lib = next(n for n in members if n.startswith("tree/lib/libsqlite3.so.0."))
        data = bytearray(members[lib])
        data[5000] ^= 0x01
        members[lib] = bytes(data)

    bad = altered(built, tmp_path, flip)
    before = snapshot([tmp_path / "opt", tmp_path / "p.sh"])
    assert_refused(install(bad, tmp_path), 4, "does not match its metadata", before, tmp_path)


def test_no_checksum_is_refused(built: Built, tmp_path: Path) -> None:
    lone = tmp_path / "lone.tar.gz"
    lone.write_bytes(built.path.read_bytes())
    before = snapshot([tmp_path / "opt", tmp_path / "p.sh"])
    assert_refused(install(lone, tmp_path), 4, "--sha256", before, tmp_path)
    ok = install(lone, tmp_path, "--sha256", hashlib.sha256(lone.read_bytes()).hexdigest())
    assert ok.proc.returncode == 0, ok.describe()


@pytest.mark.parametrize(
    "field, value, words",
    [("arch", "s390x", "built for s390x"), ("glibc_min", "99.0", "needs glibc 99.0")],
)
def test_other_host_is_refused(
    built: Built, tmp_path: Path, field: str, value: str, words: str
) -> None:
    def edit(members: Dict[str, bytes]) -> None:
        meta = json.loads(members["metadata.json"])
        meta[field] = value
        members["metadata.json"] = json.dumps(meta).encode()

    bad = altered(built, tmp_path, edit)
    before = snapshot([tmp_path / "opt", tmp_path / "p.sh"])
    assert_refused(install(bad, tmp_path), 3, words, before, tmp_path)
