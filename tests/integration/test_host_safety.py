"""Host safety with real builds against this machine's own system libsqlite3: the compatible
build keeps the system library's whole public API, the ABI gate refuses a build that does not,
the smoke test rolls back, versions switch and roll back, uninstall removes only its own files,
and a second run waits for the first one's lock."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Dict, List

import pytest

from sqlite_provision.host.elf import exported_functions
from sqlite_provision.host.library import probe
from sqlite_provision.recipe.features import public_symbols
from sqlite_provision.runner import Runner
from support import unavailable
from support.clirun import PYTHON, Run, injected, run_cli, tool_env
from support.faults import log_tail_block
from support.interpreters import old_pythons
from support.mirror import Mirror
from support.snapshot import diff, snapshot

pytestmark = pytest.mark.integration


def args(mirror: Mirror, root: Path, *extra: str) -> List[str]:
    return [
        "install", "--mirror", mirror.url, "--prefix-root", str(root / "opt"),
        "--profile-file", str(root / "profile.d" / "sqlite-provision.sh"),
        "--python", PYTHON, "--json", *extra,
    ]  # fmt: skip


def ok(run: Run) -> Dict[str, object]:
    assert run.proc.returncode == 0, run.describe()
    return run.data


def loaded(root: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    profile = root / "profile.d" / "sqlite-provision.sh"
    return subprocess.run(
        ["sh", "-c", '. "$1"; exec "$2" -c "import sqlite3; print(sqlite3.sqlite_version)"',
         "sh", str(profile), PYTHON],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


class Host:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = tool_env(root / "state")
        self.env["SQLITE_PROVISION_TEST_SYSTEMD_DIR"] = str(root / "systemd")

    def watched(self) -> List[Path]:
        return [self.root / "opt", self.root / "profile.d", self.root / "systemd"]


@pytest.fixture(scope="module")
def host44(sqlite_mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> Host:
    """3.44.2 built with the defaults (--compat host) into a prefix root."""
    host = Host(tmp_path_factory.mktemp("host44"))
    ok(run_cli(args(sqlite_mirror, host.root, "--version", "3.44.2"), host.env))
    return host


def test_default_build_keeps_every_public_symbol_of_the_system_library(host44: Host) -> None:
    system = probe(Runner(os.environ), PYTHON)
    assert system.path and len(system.symbols) > 250, system
    new = public_symbols(
        exported_functions(host44.root / "opt" / "current" / "lib" / "libsqlite3.so.0")
    )
    assert system.symbols - new == set()


def test_compat_none_is_refused_by_the_abi_gate(sqlite_mirror: Mirror, tmp_path: Path) -> None:
    host = Host(tmp_path)
    before = snapshot(host.watched())
    run = run_cli(
        args(sqlite_mirror, tmp_path, "--version", "3.52.0", "--allow-withdrawn",
             "--compat", "none"),
        host.env,
    )  # fmt: skip
    assert run.proc.returncode == 6, run.describe()
    assert "sqlite3_column_table_name" in run.proc.stderr
    assert "ENABLE_COLUMN_METADATA" in run.proc.stderr
    assert diff(before, snapshot(host.watched())) == {}

    allowed = run_cli(
        args(sqlite_mirror, tmp_path, "--version", "3.52.0", "--allow-withdrawn",
             "--compat", "none", "--allow-abi-loss"),
        host.env,
    )  # fmt: skip
    data = ok(allowed)
    assert "warning: --allow-abi-loss" in allowed.proc.stderr
    assert "sqlite3_column_table_name" in allowed.proc.stderr
    assert data["verified"][0]["sqlite_version"] == "3.52.0"  # type: ignore[index]


def test_smoke_test_failure_rolls_back_byte_for_byte(sqlite_mirror: Mirror, tmp_path: Path) -> None:
    host = Host(tmp_path)
    # An earlier snippet and drop-in, which must come back exactly.
    (tmp_path / "profile.d").mkdir()
    (tmp_path / "profile.d" / "sqlite-provision.sh").write_text("# an older snippet\n")
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "rpm").write_text(
        "#!/bin/sh\n"
        'case ":$LD_LIBRARY_PATH:" in *"' + str(tmp_path / "opt") + '"*)\n'
        '  echo "error: rpmdb: undefined symbol: sqlite3_stub_failure" >&2; exit 1;;\n'
        "esac\nexit 0\n"
    )
    (stub / "rpm").chmod(0o755)
    host.env["PATH"] = f"{stub}:{host.env['PATH']}"
    before = snapshot(host.watched())
    run = run_cli(args(sqlite_mirror, tmp_path, "--version", "3.44.2",
                       "--systemd-unit", "myapp"), host.env)  # fmt: skip
    assert run.proc.returncode == 6, run.describe()
    assert "rpm -qa" in run.proc.stderr and "sqlite3_stub_failure" in run.proc.stderr
    # rpm's own words explain it: they are among the log's last lines shown.
    assert any("sqlite3_stub_failure" in line for line in log_tail_block(run.proc.stderr))
    assert diff(before, snapshot(host.watched())) == {}


def test_upgrade_rollback_and_uninstall(host44: Host, sqlite_mirror: Mirror) -> None:
    root = host44.root
    assert loaded(root) == "3.44.2"
    data = ok(run_cli(args(sqlite_mirror, root, "--version", "3.52.0", "--allow-withdrawn"),
                      host44.env))  # fmt: skip
    assert data["changed"] is True
    assert os.readlink(str(root / "opt" / "current")) == "3.52.0"
    assert os.readlink(str(root / "opt" / "previous")) == "3.44.2"
    assert loaded(root) == "3.52.0"

    back = run_cli(["rollback", "--prefix-root", str(root / "opt"), "--profile-file",
                    str(root / "profile.d" / "sqlite-provision.sh"), "--python", PYTHON,
                    "--json"], host44.env)  # fmt: skip
    assert ok(back)["version"] == "3.44.2"
    assert os.readlink(str(root / "opt" / "current")) == "3.44.2"
    assert loaded(root) == "3.44.2"

    refused = run_cli(["uninstall", "3.44.2", "--prefix-root", str(root / "opt")], host44.env)
    assert refused.proc.returncode == 3, refused.describe()
    assert "current" in refused.proc.stderr

    foreign = root / "opt" / "3.52.0" / "lib" / "planted-by-someone.txt"
    foreign.write_text("not ours\n")
    gone = run_cli(["uninstall", "3.52.0", "--prefix-root", str(root / "opt"), "--json"],
                   host44.env)  # fmt: skip
    result = ok(gone)
    assert result["removed_versions"] == ["3.52.0"]
    assert result["kept_foreign"] == [str(foreign)]
    assert foreign.read_text() == "not ours\n"
    assert not (root / "opt" / "3.52.0" / "lib" / "libsqlite3.so.0").exists()
    assert not os.path.lexists(str(root / "opt" / "previous"))
    assert loaded(root) == "3.44.2"


def test_second_run_waits_for_the_lock_or_gives_up(host44: Host, sqlite_mirror: Mirror) -> None:
    # The first run is an idempotent re-run whose verify python is slow: it holds the lock ~4 s.
    slow = host44.root / "slow-python"
    slow.write_text(f'#!/bin/sh\nsleep 4\nexec "{PYTHON}" "$@"\n')
    slow.chmod(0o755)
    first_args = args(sqlite_mirror, host44.root, "--version", "3.44.2")
    first_args[first_args.index("--python") + 1] = str(slow)
    first = subprocess.Popen(
        injected([PYTHON, "-m", "sqlite_provision", *first_args], host44.env), env=host44.env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # The holder writes its pid into the lock file once it holds the lock; from then on it
        # spends ~4 s in verify.
        lock = Path(host44.env["SQLITE_PROVISION_LOCK_FILE"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if lock.exists() and lock.read_text().strip() == str(first.pid):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the first run never took the lock")
        impatient = run_cli(args(sqlite_mirror, host44.root, "--version", "3.44.2",
                                 "--lock-timeout", "1"), host44.env)  # fmt: skip
        assert impatient.proc.returncode == 3, impatient.describe()
        assert f"pid {first.pid}" in impatient.proc.stderr
        patient = run_cli(args(sqlite_mirror, host44.root, "--version", "3.44.2"), host44.env)
        assert ok(patient)["changed"] is False
        assert "waiting up to" in patient.proc.stderr
    finally:
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert json.loads(out)["changed"] is False


def test_host_library_is_the_distributions_even_when_ours_is_loaded(host44: Host) -> None:
    """With --ld-so-conf active, python maps our library without any LD_LIBRARY_PATH; the ABI gate
    must still compare with the distribution's library, not with our own earlier build."""
    wrapper = host44.root / "python-with-ours"
    lib = host44.root / "opt" / "current" / "lib"
    wrapper.write_text(f'#!/bin/sh\nLD_LIBRARY_PATH={lib} exec "{PYTHON}" "$@"\n')
    wrapper.chmod(0o755)
    seen = probe(Runner(os.environ), str(wrapper))
    assert seen.path and not os.path.realpath(seen.path).startswith(str(host44.root))
    assert seen.version == probe(Runner(os.environ), PYTHON).version
    assert seen.symbols == probe(Runner(os.environ), PYTHON).symbols


def test_update_delete_limit_is_not_claimed_and_would_not_work(host44: Host) -> None:
    """Why ENABLE_UPDATE_DELETE_LIMIT is never passed: even with the flag, the amalgamation's
    pre-generated parser refuses DELETE ... LIMIT. Our build neither claims nor has it."""
    lib = host44.root / "opt" / "current" / "lib"
    script = (
        "import sqlite3\n"
        "c = sqlite3.connect(':memory:')\n"
        "opts = [r[0] for r in c.execute('pragma compile_options')]\n"
        "c.execute('create table t(x)')\n"
        "try:\n"
        "    c.execute('delete from t limit 1'); print('limit-ok', 'ENABLE_UPDATE_DELETE_LIMIT' in opts)\n"
        "except sqlite3.OperationalError:\n"
        "    print('limit-refused', 'ENABLE_UPDATE_DELETE_LIMIT' in opts)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    env["LD_LIBRARY_PATH"] = str(lib)
    out = subprocess.run([PYTHON, "-c", script], env=env, capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    assert out == ["limit-refused", "False"]


def test_verification_works_for_old_pythons(host44: Host, sqlite_mirror: Mirror) -> None:
    """RHEL 8's platform-python is 3.6 (and 2.7 lingers): verify runs its tiny script in them."""
    olds = old_pythons()
    if len(olds) < 2:
        unavailable(f"python2.7 and python3.6 are needed, found {olds}")
    extra = [a for p in olds for a in ("--python", p)]
    data = ok(run_cli(args(sqlite_mirror, host44.root, "--version", "3.44.2", *extra), host44.env))
    seen = {v["python_version"][:3]: v for v in data["verified"]}  # type: ignore[union-attr]
    assert set(seen) >= {"2.7", "3.6"}, seen
    for v in seen.values():
        assert v["ok"] and v["sqlite_version"] == "3.44.2", v
        assert str(host44.root / "opt") in v["library"]


def test_status_shows_what_each_python_loads_with_and_without_the_snippet(host44: Host) -> None:
    root = host44.root
    data = ok(run_cli(["status", "--prefix-root", str(root / "opt"), "--profile-file",
                       str(root / "profile.d" / "sqlite-provision.sh"), "--python", PYTHON,
                       "--json"], host44.env))  # fmt: skip
    assert data["current"] == "3.44.2"
    assert [row["version"] for row in data["installed"]] == ["3.44.2"]  # type: ignore[index]
    features = dict(data["installed"][0]["features"])  # type: ignore[index]
    assert features["ENABLE_COLUMN_METADATA"] == "rhel baseline"
    assert data["pythons"][0]["sqlite_version"] == probe(Runner(os.environ), PYTHON).version  # type: ignore[index]
    assert data["pythons_with_profile"][0]["sqlite_version"] == "3.44.2"  # type: ignore[index]
    assert data["profile_file"]["managed"] is True  # type: ignore[index]
