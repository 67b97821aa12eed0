#!/usr/bin/env python3
"""Start-up costs, measured in one run, with ratios (these machines are noisy: compare ratios).

- `python3 sqlite-provision.pyz --help` on CPython 3.6 and 3.11 (the target: 0.25 s on 3.11),
  beside the installed console script's `--help` on this python.
- `env -i VENV/bin/python -c pass` in a venv bound by `install --venv` (its hook, as the tool
  renders it) against the same in an unbound venv of the same python: what a bound python that
  never imports sqlite3 pays at start-up (the target: a ratio of 1.05 or less).

Each command runs --repeat times in turn (A B A B ...) after one warm-up; the table gives the
median wall time of each and the median of the pair-by-pair ratios. It asserts nothing.

    python bench/startup.py [--repeat 15] [--pyz dist/sqlite-provision.pyz] [--out FILE.json]
"""

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parent.parent
PYENV = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def interpreter(minor: str) -> Optional[str]:
    found = sorted(glob.glob(str(PYENV / "versions" / f"{minor}.*" / "bin" / f"python{minor}")))
    return found[-1] if found else None


def wall(argv: Sequence[str], env: Dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # noqa: S603
    return time.perf_counter() - started


def paired(
    commands: Dict[str, List[str]], env: Dict[str, str], repeat: int
) -> Dict[str, List[float]]:
    """Every command once per round, round after round: drift hits them all alike."""
    for argv in commands.values():
        wall(argv, env)  # warm-up: page cache, pyc of the installed script
    times: Dict[str, List[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, argv in commands.items():
            times[name].append(wall(argv, env))
    return times


def make_venv(path: Path, hooked: bool) -> Path:
    """A venv of /usr/bin/python3 (a host's python), with the tool's hook when `hooked`."""
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(path)], check=True)  # noqa: S603
    if hooked:
        from sqlite_provision.steps.activation import load_templates, render_venv_hook

        script = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        python = str(path / "bin" / "python")
        answer = subprocess.run([python, "-c", script], capture_output=True, text=True, check=True)  # noqa: S603
        site = answer.stdout.strip()
        library = Path("/opt/sqlite/current/lib/libsqlite3.so.0")
        Path(site, "sqlite-provision-hook.pth").write_text(
            render_venv_hook(load_templates(), library)
        )
    return path / "bin" / "python"


def callgrind_instructions(python: Path) -> Optional[int]:
    """Instructions of `env -i PYTHON -c pass`, counted by valgrind: the same on every run."""
    if not shutil.which("valgrind"):
        return None
    with tempfile.NamedTemporaryFile(suffix=".callgrind") as out:
        result = subprocess.run(  # noqa: S603
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}", str(python),  # noqa: S607
             "-c", "pass"], env={}, capture_output=True, text=True, check=False,
        )  # fmt: skip
    found = [line for line in result.stderr.splitlines() if "Collected :" in line]
    return int(found[-1].split()[-1]) if found else None


def ratio(times: Dict[str, List[float]], a: str, b: str) -> float:
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--pyz", type=Path, default=REPO / "dist" / "sqlite-provision.pyz")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not args.pyz.is_file():
        subprocess.run([sys.executable, str(REPO / "scripts" / "build-pyz")], check=True)  # noqa: S603
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    commands: Dict[str, List[str]] = {}
    for minor in ("3.6", "3.11"):
        python = interpreter(minor)
        if python:
            commands[f"pyz --help on {minor}"] = [python, str(args.pyz), "--help"]
    installed = Path(sys.executable).parent / "sqlite-provision"
    if installed.exists():
        commands["installed --help"] = [str(installed), "--help"]
    work = Path(tempfile.mkdtemp(prefix="sqlite-provision-bench-"))
    try:
        for name, hooked in (("unbound", False), ("bound", True)):
            commands[f"{name} venv: python -c pass"] = [str(make_venv(work / name, hooked)),
                                                        "-c", "pass"]  # fmt: skip
        times = paired(commands, env, args.repeat)
        instructions = {
            name: callgrind_instructions(work / name / "bin" / "python")
            for name in ("unbound", "bound")
        }
    finally:
        shutil.rmtree(str(work), ignore_errors=True)
    rows = []
    for name in commands:
        median = statistics.median(times[name])
        target = "<= 0.25" if name == "pyz --help on 3.11" else ""
        verdict = ("ok" if median <= 0.25 else "MISSED") if target else ""
        rows.append(
            {
                "measurement": name,
                "median_s": round(median, 3),
                "min_s": round(min(times[name]), 3),
                "target": target,
                "": verdict,
            }
        )
    rows.append({"measurement": "bound / unbound venv, python -c pass (ratio of pairs)",
                 "median_s": round(ratio(times, "bound venv: python -c pass",
                                         "unbound venv: python -c pass"), 3),
                 "min_s": "", "target": "<= 1.05", "": ""})  # fmt: skip
    rows[-1][""] = "ok" if rows[-1]["median_s"] <= 1.05 else "MISSED"
    if instructions["unbound"] and instructions["bound"]:
        rows.append({"measurement": "bound / unbound, instructions (valgrind, exact)",
                     "median_s": round(instructions["bound"] / instructions["unbound"], 3),
                     "min_s": "", "target": "", "": ""})  # fmt: skip
    if "pyz --help on 3.11" in times and "installed --help" in times:
        rows.append(
            {
                "measurement": "pyz on 3.11 / installed (ratio of pairs)",
                "median_s": round(ratio(times, "pyz --help on 3.11", "installed --help"), 2),
                "min_s": "",
                "target": "",
                "": "",
            }
        )
    print(f"{'measurement':<44} {'median':>8} {'min':>8}  target")
    for row in rows:
        print(
            f"{row['measurement']:<44} {row['median_s']!s:>8} {row['min_s']!s:>8}  "
            f"{row['target']} {row['']}".rstrip()
        )
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "times": times}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
