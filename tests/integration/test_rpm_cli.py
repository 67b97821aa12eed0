"""`sqlite-provision build --rpm OUT_DIR [--sign KEY]` through the real CLI: a real build of the
shared 3.44.2 tarball, packed by the real rpmbuild as the build user and signed by the real
rpmsign with a throw-away gpg key; the one --json envelope with the package's keys; the package
read back by the real rpm (no .so provided, the signature checks out against the key only)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict

import pytest

from sqlite_provision.host.rpmdb import check_signature
from sqlite_provision.runner import Runner
from support import need_tool
from support.clirun import check_plan_ran, run_cli, tool_env
from support.gpg import ThrowawayKey

pytestmark = [pytest.mark.integration]

NAME = "sqlite-provision-sqlite3_44_2"


def rpm_q(*args: str) -> str:
    done = subprocess.run([need_tool("rpm"), *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}, timeout=60, check=True)  # fmt: skip
    return done.stdout


def test_build_rpm_writes_a_signed_package_that_provides_no_library(
    shared_tarballs: Dict[str, Any], tmp_path: Path
) -> None:
    need_tool("rpmbuild")
    need_tool("rpmsign")
    tarball = str(shared_tarballs["3.44.2"]["path"])
    out = tmp_path / "out" / "rpms"  # created by the tool
    with ThrowawayKey(tmp_path / "gnupg") as key:
        env = dict(tool_env(tmp_path / "state"), GNUPGHOME=str(key.home))
        base = ["build", "--tarball", tarball, "--rpm", str(out), "--sign", key.uid]
        plan = run_cli([*base, "--dry-run", "--json"], env).data
        assert not out.exists() and plan["changed"] is False
        pack = plan["steps"][-1]
        assert pack["name"] == "pack-rpm" and str(out) in pack["description"]
        if os.geteuid() == 0:
            assert "rpmbuild as " in pack["description"], pack  # never as root
        done = run_cli([*base, "--json"], env)
        data = done.data
    assert done.proc.returncode == 0 and data["ok"] and data["changed"], done.describe()
    check_plan_ran(plan, Path(data["log_file"]))  # rpmbuild, rpm -qp and rpmsign, as shown
    assert [c.split()[0] for c in pack["commands"]][-2:] == ["rpm", shutil.which("rpmsign")]
    rpm = Path(data["rpm"])
    assert rpm == out / f"{NAME}-3.44.2-1.{os.uname().machine}.rpm" and rpm.is_file()
    assert (data["name"], data["version"], data["signed_with"]) == (NAME, "3.44.2", key.uid)
    payload = rpm.read_bytes()
    assert data["sha256"] == hashlib.sha256(payload).hexdigest()
    sidecar = Path(data["sha256_file"])
    assert sidecar.read_text(encoding="ascii") == f"{data['sha256']}  {rpm.name}\n"
    assert sorted(os.listdir(str(out))) == sorted([rpm.name, sidecar.name])
    provides = rpm_q("-qp", "--provides", str(rpm)).split("\n")
    assert [p for p in provides if p] == data["provides"]
    assert not [p for p in provides if ".so" in p], provides
    requires = rpm_q("-qp", "--requires", str(rpm))
    assert any(r.startswith("libc.so.6(GLIBC_2.") for r in data["requires"]), requires
    assert not [r for r in data["requires"] if r.startswith("libsqlite3")]
    files = rpm_q("-qpl", str(rpm)).split()
    assert "/opt/sqlite/3.44.2/lib/libsqlite3.so.0" in files and "/opt/sqlite/current" not in files
    keyring = tmp_path / "keyring"
    runner = Runner(os.environ)
    assert not check_signature(runner, rpm, keyring).ok
    rpm_q("--dbpath", str(keyring), "--import", str(key.public))
    trusted = check_signature(runner, rpm, keyring)
    assert trusted.ok and trusted.key_ids == (key.key_id,), trusted


@pytest.mark.parametrize(
    "args",
    [["--artifact", "a.tar.gz", "--rpm", "out"], [], ["--artifact", "a.tar.gz", "--sign", "K"]],
)
def test_build_needs_one_output_and_sign_needs_rpm(args: Any, tmp_path: Path) -> None:
    done = run_cli(["build", "--version", "3.44.2", *args, "--json"], tool_env(tmp_path))
    data = done.data
    assert done.proc.returncode == 2 and data["ok"] is False, done.describe()
    assert "--rpm" in data["error"] and data["hint"]
    assert not (tmp_path / "out").exists() and not (tmp_path / "a.tar.gz").exists()
