"""The session's artifacts (`sqlite-provision build --artifact`): real builds of the shared
tarballs, each made once per session through the shipped pyz, that the lifecycle tests then
install through every launcher with no compiler (`install --artifact`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List

from support.clirun import Run, run_cli, tool_env
from support.launchers import Launcher

# Which launcher builds which release: one real build per release, each of the pyz's pythons
# doing one (3.44.2 is an autoconf-era tarball, 3.52.0 an autosetup-era one).
BUILT_BY = {"3.44.2": "pyz-3.6", "3.52.0": "pyz-3.13"}


@dataclass(frozen=True)
class Artifact:
    version: str
    path: Path
    run: Run  # the `build --json` that made it
    launcher: Launcher
    dry_run: Run  # `build --dry-run --json` with the same arguments, just before `run`


def build_artifact(version: str, launcher: Launcher, mirror_url: str, root: Path) -> Artifact:
    """`build --version VERSION --artifact ROOT/dist/sqlite-VERSION.tar.gz` through launcher;
    it must exit 0 and install nothing on this host."""
    out = root / "dist" / f"sqlite-{version}.tar.gz"
    built_for = root / f"built-for-{version}"
    args: List[str] = ["build", "--version", version, "--mirror", mirror_url,
                       "--prefix-root", str(built_for), "--artifact", str(out), "--json"]  # fmt: skip
    if version == "3.52.0":
        args.append("--allow-withdrawn")
    env = tool_env(root / "state")
    dry_run = run_cli([*args, "--dry-run"], env, command=launcher.argv)
    run = run_cli(args, env, command=launcher.argv)
    assert run.proc.returncode == 0, run.describe()
    assert not built_for.exists(), "build must not install anything"
    return Artifact(version, out, run, launcher, dry_run)
