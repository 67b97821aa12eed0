"""The activation files beyond the sh snippet: the csh twin under a real tcsh, the systemd
drop-in (systemd-analyze when it runs here, else parsed), the env file and ld.so.conf."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional

import pytest

from sqlite_provision.config import HostPaths, Layout, Options, unit_base_name
from sqlite_provision.errors import UsageError
from sqlite_provision.steps import activation
from support import need_tool

TEMPLATES = activation.load_templates()


def render(name: str, **values: str) -> str:
    return activation.render(TEMPLATES, name, **values)


LIB = "/opt/sqlite/current/lib"


@pytest.fixture
def csh_file(tmp_path: Path) -> Path:
    path = tmp_path / "sqlite-provision.csh"
    path.write_text(render("profile.csh.j2", lib_dir=LIB))
    return path


@pytest.mark.parametrize("start", [None, "", "/usr/lib/foo", f"/usr/lib/foo:{LIB}"])
def test_csh_snippet_sourced_twice(csh_file: Path, start: Optional[str]) -> None:
    setup = "unsetenv LD_LIBRARY_PATH; " if start is None else f'setenv LD_LIBRARY_PATH "{start}"; '
    script = setup + f"source {csh_file}; source {csh_file}; " + 'echo "=$LD_LIBRARY_PATH="'
    out = subprocess.run([need_tool("tcsh"), "-f", "-c", script], capture_output=True, text=True,
                         env={"PATH": os.environ["PATH"]}, check=True).stdout  # fmt: skip
    value = out.strip().strip("=")
    parts = value.split(":")
    assert "" not in parts, value  # no empty element: it would mean the current directory
    assert parts.count(LIB) == 1, value
    if start and LIB not in start:
        assert parts[0] == LIB and parts[1:] == start.split(":")
    if not start:
        assert parts == [LIB]


def test_systemd_dropin(tmp_path: Path) -> None:
    host_paths = HostPaths(systemd_dir=tmp_path / "system")
    layout = Layout(Path("/opt/sqlite/3.53.4"), Path("/opt/sqlite/current"), Path(LIB), None)
    options = Options(systemd_units=("myapp.service", "worker"))
    steps = activation.service_steps(
        TEMPLATES, options.systemd_units, options.env_file, layout, host_paths.systemd_dir, True
    )
    paths = [getattr(s, "path") for s in steps]  # noqa: B009
    assert paths == [
        tmp_path / "system" / "myapp.service.d" / "sqlite-provision.conf",
        tmp_path / "system" / "worker.service.d" / "sqlite-provision.conf",
    ]
    text = getattr(steps[0], "content")  # noqa: B009
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    assert parser.sections() == ["Service"]
    assert dict(parser["Service"]) == {"Environment": f"LD_LIBRARY_PATH={LIB}"}
    analyze = shutil.which("systemd-analyze")
    if analyze:
        unit_dir = tmp_path / "units"
        unit_dir.mkdir()
        (unit_dir / "myapp.service").write_text("[Service]\nExecStart=/bin/true\n")
        (unit_dir / "myapp.service.d").mkdir()
        (unit_dir / "myapp.service.d" / "sqlite-provision.conf").write_text(text)
        result = subprocess.run([analyze, "verify", str(unit_dir / "myapp.service")],
                                capture_output=True, text=True, check=False)  # fmt: skip
        # It reads the drop-in beside the unit and warns about any line it does not accept.
        assert result.returncode == 0, result.stderr
        assert "sqlite-provision.conf" not in result.stderr, result.stderr


def test_unit_names_are_checked() -> None:
    assert unit_base_name("myapp.service") == "myapp"
    assert unit_base_name("getty@tty1") == "getty@tty1"
    for bad in ("", "../etc", "a b", ".hidden", "x;rm"):
        with pytest.raises(UsageError):
            unit_base_name(bad)


def test_env_file_and_ld_so_conf(tmp_path: Path) -> None:
    host_paths = HostPaths(ld_so_conf_dir=tmp_path / "ld")
    layout = Layout(Path("/opt/sqlite/3.53.4"), Path("/opt/sqlite/current"), Path(LIB), None)
    env_steps = activation.service_steps(
        TEMPLATES, (), tmp_path / "env", layout, tmp_path / "system", False
    )
    env_text = getattr(env_steps[0], "content")  # noqa: B009
    # systemd's EnvironmentFile and `set -a; . FILE` both read it.
    out = subprocess.run(["sh", "-c", 'set -a; . "$1"; echo "$LD_LIBRARY_PATH"', "sh", "/dev/stdin"],
                         input=env_text, capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert out.strip() == LIB
    step = activation.ld_so_conf_step(TEMPLATES, layout, host_paths.ld_so_conf_dir)
    assert step.path == tmp_path / "ld" / "sqlite-provision.conf"
    lines = [ln for ln in getattr(step, "content").splitlines() if not ln.startswith("#")]  # noqa: B009
    assert lines == [LIB]
    assert step.commands() == []  # ldconfig only for the real /etc/ld.so.conf.d
    real = activation.ld_so_conf_step(TEMPLATES, layout, HostPaths().ld_so_conf_dir)
    assert real.commands() == [["ldconfig"]]
