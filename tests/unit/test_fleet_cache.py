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


# --- RPMs (fleet.yml's repository mode) -------------------------------------------------------

RPM_FILE = "sqlite-provision-sqlite3_44_2-3.44.2-1.x86_64.rpm"


def built_json(requires: List[str], rpm: str = f"/var/tmp/out/{RPM_FILE}") -> Dict[str, Any]:
    """What `sqlite-provision build --rpm --json` prints of a package (the keys admit reads)."""
    return {"ok": True, "rpm": rpm, "name": "sqlite-provision-sqlite3_44_2", "version": "3.44.2",
            "requires": requires}  # fmt: skip


REQUIRES = ["libc.so.6()(64bit)", "libc.so.6(GLIBC_2.14)(64bit)", "libc.so.6(GLIBC_2.29)(64bit)",
            "libc.so.6(GLIBC_2.3.4)(64bit)", "libm.so.6(GLIBC_2.35)(64bit)", "rtld(GNU_HASH)"]  # fmt: skip


def incoming_rpm(directory: Path, stem: str, body: bytes = b"\xed\xab\xee\xdb rpm") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.rpm"
    path.write_bytes(body)
    Path(f"{path}.sha256").write_text(f"{hashlib.sha256(body).hexdigest()}  {path.name}\n")
    return path


def find_rpm(cache: Path, *glibcs: str) -> Dict[str, Any]:
    done = run("find", str(cache), "--kind", "rpm", "--arch", "x86_64", "--release", "RedHat9",
               "--cflags=-O0", *[f"--glibc={g}" for g in glibcs])  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_an_rpm_is_admitted_under_the_highest_glibc_its_requires_name(tmp_path: Path) -> None:
    """The floor is libc's highest GLIBC_x.y (2.29, compared as versions: not 2.3.4, and not
    libm's); the .json beside it keeps the package's name and file name for `repo`."""
    cache = tmp_path / "cache"
    found = find_rpm(cache, "2.31")
    assert found["hit"] is None and found["suffix"] == ".rpm" and found["kind"] == "rpm"
    stem = found["stem"]
    assert stem == find(cache, "2.31")["stem"]  # the same key as the group's artifact
    built = incoming_rpm(tmp_path / "incoming", stem)
    done = run("admit", str(cache), str(built), stdin=built_json(REQUIRES))
    assert done.returncode == 0, done.stderr
    head, tail = stem.rsplit("-", 1)
    name = f"{head}-glibc2.29-{tail}.rpm"
    assert json.loads(done.stdout) == {"artifact": name, "glibc": "2.29",
                                       "package": "sqlite-provision-sqlite3_44_2"}  # fmt: skip
    facts = json.loads((cache / f"{name}.json").read_text())
    assert (facts["package"], facts["file"], facts["glibc_min"]) == (
        "sqlite-provision-sqlite3_44_2", RPM_FILE, "2.29")  # fmt: skip
    assert find_rpm(cache, "2.31")["hit"] == name
    assert find_rpm(cache, "2.28")["refused"] == [{"artifact": name, "glibc": "2.29"}]
    assert find(cache, "2.31")["hit"] is None  # an RPM is never an artifact's hit


def test_an_rpm_whose_recorded_floor_disagrees_with_its_name_is_never_a_hit(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    stem = find_rpm(cache, "2.31")["stem"]
    built = incoming_rpm(tmp_path / "incoming", stem)
    assert run("admit", str(cache), str(built), stdin=built_json(REQUIRES)).returncode == 0
    (record,) = cache.glob("*.rpm.json")
    record.write_text(record.read_text().replace('"2.29"', '"2.17"'))
    found = find_rpm(cache, "2.31")
    assert found["hit"] is None and found["ignored"][0]["reason"].startswith("its metadata")


@pytest.mark.parametrize(
    "stdin, message",
    [
        ({"ok": True}, "names no requires"),
        (built_json(REQUIRES, rpm="/tmp/evil.rpm"), "names no package of sqlite-provision"),
    ],
)
def test_admit_refuses_an_rpm_without_the_builds_json(
    tmp_path: Path, stdin: Dict[str, Any], message: str
) -> None:
    built = incoming_rpm(tmp_path, "sqlite-3.44.2-x86_64-0123456789")
    done = run("admit", str(tmp_path / "cache"), str(built), stdin=stdin)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert built.is_file() and not (tmp_path / "cache").exists()


def test_repo_holds_one_build_of_each_package_under_its_own_file_name(tmp_path: Path) -> None:
    cache, repos = tmp_path / "cache", tmp_path / "repos"
    stem = find_rpm(cache, "2.31")["stem"]
    first = incoming_rpm(tmp_path / "in1", stem, b"first build")
    run("admit", str(cache), str(first), stdin=built_json(REQUIRES))
    (cached,) = cache.glob("*.rpm")
    done = run("repo", str(repos), "G9", str(cached))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"repo": str(repos / "G9"), "file": RPM_FILE,
                                       "package": "sqlite-provision-sqlite3_44_2", "changed": True}  # fmt: skip
    assert (repos / "G9" / RPM_FILE).read_bytes() == b"first build"
    assert oct((repos / "G9" / RPM_FILE).stat().st_mode & 0o777) == "0o644"
    assert json.loads(run("repo", str(repos), "G9", str(cached)).stdout)["changed"] is False
    other = repos / "G9" / "sqlite-provision-sqlite3_46_1-3.46.1-1.x86_64.rpm"
    other.write_bytes(b"another version")
    # another build of the same package (other options: another key) replaces it; 3.46.1 stays
    second = incoming_rpm(tmp_path / "in2", stem[:-10] + "abcdef0123", b"second build")
    run("admit", str(cache), str(second), stdin=built_json(REQUIRES))
    (newer,) = [p for p in cache.glob("*.rpm") if "abcdef0123" in p.name]
    assert json.loads(run("repo", str(repos), "G9", str(newer)).stdout)["changed"] is True
    assert (repos / "G9" / RPM_FILE).read_bytes() == b"second build"
    assert sorted(p.name for p in (repos / "G9").iterdir()) == sorted([RPM_FILE, other.name])
    cached.write_bytes(b"tampered")
    refused = run("repo", str(repos), "G9", str(cached))
    assert refused.returncode == 2 and "matches its .sha256" in refused.stderr


def test_bundle_takes_a_repository_directory_whole(tmp_path: Path) -> None:
    tool = tmp_path / "sqlite-provision.pyz"
    tool.write_bytes(b"pyz")
    repository = tmp_path / "G9"
    (repository / "repodata").mkdir(parents=True)
    (repository / "repodata" / "repomd.xml").write_text("<repomd/>")
    (repository / RPM_FILE).write_bytes(b"rpm")
    out = tmp_path / "bundle.tar"
    done = run("bundle", str(out), "fleet", str(tool), str(repository))
    assert done.returncode == 0, done.stderr
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == sorted(["fleet", "fleet/G9", f"fleet/G9/{RPM_FILE}",
                                      "fleet/G9/repodata", "fleet/G9/repodata/repomd.xml",
                                      "fleet/sqlite-provision.pyz"])  # fmt: skip
    assert oct(members["fleet/G9/repodata"].mode) == "0o755"
    assert oct(members["fleet/G9/repodata/repomd.xml"].mode) == "0o644"
    assert all(m.uname == "root" for m in members.values())


@pytest.mark.parametrize("version", ["3.24.0", "3.44.2", "3.53.4"])
def test_find_names_the_package_as_the_tool_names_it(tmp_path: Path, version: str) -> None:
    from sqlite_provision.recipe.rpmspec import package_name

    found = find(tmp_path, "2.31", plan={**PLAN, "version": version})
    assert found["package"] == package_name(version)
