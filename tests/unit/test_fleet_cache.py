"""The controller's cache of fleet.yml (examples/ansible/roles/sqlite_provision_fleet/files/
fleet_cache.py), run as the play runs it: a subprocess with the build's dry run on stdin, against
artifacts laid out as `sqlite-provision build --artifact` writes them (metadata.json first, the
.sha256 beside). The fleet tier (tests/integration/test_fleet.py) runs it inside the real play."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from support import REPO_ROOT

SCRIPT = (
    REPO_ROOT
    / "examples"
    / "ansible"
    / "roles"
    / "sqlite_provision_fleet"
    / "files"
    / "fleet_cache.py"
)
PLAN = {
    "version": "3.44.2",
    "features": [{"option": "ENABLE_FTS5", "origin": "rhel baseline"},
                 {"option": "ENABLE_SESSION", "origin": "host library"}],
}  # fmt: skip


def run(*args: str, stdin: Optional[Dict[str, Any]] = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        input=json.dumps(stdin if stdin is not None else PLAN),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def find(cache: Path, *glibcs: str, plan: Optional[Dict[str, Any]] = None,
         release: str = "RedHat9", cflags: str = "-O0") -> Dict[str, Any]:  # fmt: skip
    done = run("find", str(cache), "--arch", "x86_64", "--release", release, f"--cflags={cflags}",
               *[f"--glibc={g}" for g in glibcs], stdin=plan)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def artifact(path: Path, glibc_min: Optional[str], sidecar: Optional[str] = None) -> Path:
    """A small artifact: metadata.json first, as the tool packs it, and its .sha256."""
    metadata = json.dumps({"version": "3.44.2", "arch": "x86_64", "glibc_min": glibc_min}).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("metadata.json", metadata), ("tree/lib/libsqlite3.so.0", b"\x7fELF")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    Path(f"{path}.sha256").write_text(f"{sidecar or digest}  {path.name}\n")
    return path


def cached(cache: Path, stem: str, floor: str, glibc_min: Optional[str] = None,
           sidecar: Optional[str] = None) -> Path:  # fmt: skip
    head, digest = stem.rsplit("-", 1)
    cache.mkdir(exist_ok=True)
    return artifact(cache / f"{head}-glibc{floor}-{digest}.tar.gz",
                    floor if glibc_min is None else glibc_min, sidecar)  # fmt: skip


def test_the_key_names_version_and_arch_and_digests_options_cflags_and_release(
    tmp_path: Path,
) -> None:
    stem = find(tmp_path, "2.31")["stem"]
    assert stem.startswith("sqlite-3.44.2-x86_64-") and len(stem.rsplit("-", 1)[1]) == 10
    reordered = dict(PLAN, features=list(reversed(PLAN["features"])))
    assert find(tmp_path, "2.31", plan=reordered)["stem"] == stem
    assert find(tmp_path, "2.31", release="RedHat8")["stem"] != stem
    assert find(tmp_path, "2.31", cflags="-O2")["stem"] != stem
    more = dict(PLAN, features=[*PLAN["features"], {"option": "SOUNDEX", "origin": "--enable"}])
    assert find(tmp_path, "2.31", plan=more)["stem"] != stem


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (dict(PLAN, version="latest"), "the fleet needs an exact version (X.Y.Z), not 'latest'"),
        ({"version": "3.44.2"}, "named no feature options"),
    ],
)
def test_a_plan_without_a_pinned_version_or_options_is_refused(
    tmp_path: Path, plan: Dict[str, Any], message: str
) -> None:
    done = run("find", str(tmp_path), "--arch", "x86_64", "--release", "RedHat9", "--glibc=2.31",
               stdin=plan)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert message in done.stderr, done.stderr


def test_the_highest_floor_the_groups_glibc_reaches_is_taken_and_a_higher_one_refused(
    tmp_path: Path,
) -> None:
    stem = find(tmp_path, "2.31")["stem"]
    for floor in ("2.17", "2.29", "2.34"):
        cached(tmp_path, stem, floor)
    found = find(tmp_path, "2.31", "2.34")  # the group's glibc is its lowest host's
    head, digest = stem.rsplit("-", 1)
    assert found["glibc"] == "2.31"
    assert found["hit"] == f"{head}-glibc2.29-{digest}.tar.gz"
    assert found["refused"] == [{"artifact": f"{head}-glibc2.34-{digest}.tar.gz", "glibc": "2.34"}]
    assert find(tmp_path, "2.17")["hit"] == f"{head}-glibc2.17-{digest}.tar.gz"
    assert find(tmp_path, "2.36")["hit"] == f"{head}-glibc2.34-{digest}.tar.gz"
    assert find(tmp_path, "2.12")["hit"] is None  # older than every floor: build


def test_a_damaged_or_misnamed_artifact_is_never_a_hit(tmp_path: Path) -> None:
    stem = find(tmp_path, "2.31")["stem"]
    cached(tmp_path, stem, "2.28", sidecar="0" * 64)
    cached(tmp_path, stem, "2.17", glibc_min="2.34")  # its name says 2.17, its metadata 2.34
    found = find(tmp_path, "2.31")
    assert found["hit"] is None and found["refused"] == []
    reasons = sorted(item["reason"] for item in found["ignored"])
    assert reasons == ["it does not match its .sha256", "its metadata names another glibc floor"]


def test_admit_names_the_new_artifact_by_its_floor(tmp_path: Path) -> None:
    stem = find(tmp_path, "2.31")["stem"]
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    built = artifact(incoming / f"{stem}.tar.gz", "2.29")
    digest = hashlib.sha256(built.read_bytes()).hexdigest()
    done = run("admit", str(tmp_path), str(built))
    assert done.returncode == 0, done.stderr
    head, tail = stem.rsplit("-", 1)
    name = f"{head}-glibc2.29-{tail}.tar.gz"
    assert json.loads(done.stdout) == {"artifact": name, "glibc": "2.29"}
    assert not list(incoming.iterdir())
    assert (tmp_path / f"{name}.sha256").read_text() == f"{digest}  {name}\n"
    assert find(tmp_path, "2.31")["hit"] == name


def test_admit_refuses_an_artifact_that_does_not_match_its_sha256(tmp_path: Path) -> None:
    built = artifact(tmp_path / "sqlite-3.44.2-x86_64-0123456789.tar.gz", "2.29", "f" * 64)
    done = run("admit", str(tmp_path), str(built))
    assert done.returncode == 2 and "does not match its .sha256" in done.stderr
    assert built.is_file() and sorted(p.name for p in tmp_path.iterdir()) == [
        built.name,
        f"{built.name}.sha256",
    ]


def test_bundle_holds_the_files_under_one_directory_owned_by_root(tmp_path: Path) -> None:
    files: List[Path] = []
    for name in ("sqlite-provision.pyz", "a.tar.gz"):
        files.append(tmp_path / name)
        files[-1].write_bytes(name.encode())
    out = tmp_path / "bundle.tar"
    done = run("bundle", str(out), "sqlite-provision-fleet", *map(str, files))
    assert done.returncode == 0, done.stderr
    with tarfile.open(out) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "sqlite-provision-fleet",
        "sqlite-provision-fleet/sqlite-provision.pyz",
        "sqlite-provision-fleet/a.tar.gz",
    ]
    assert all((m.uid, m.gid, m.uname) == (0, 0, "root") for m in members)
    assert [oct(m.mode) for m in members] == ["0o755", "0o644", "0o644"]
