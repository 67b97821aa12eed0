#!/usr/bin/env python3
"""Start-up costs, measured in one run, with ratios (these machines are noisy: compare ratios).

- `python3 sqlite-provision.pyz --help` on CPython 3.6 and 3.11 (the target: 0.25 s on 3.11),
  beside the installed console script's `--help` on this python.
- The re-run (an `install` on a host it already provisioned, which changes nothing) through the
  pyz, against the console script pip installed in a venv of the same python, on CPython 3.6
  and 3.13 (the target: a ratio of 1.15 or less); and through the pyz with its bytecode cache
  turned off (SQLITE_PROVISION_PYZ_CACHE=0), as it was before the cache. The host is provisioned
  once first (3.44.2 at CFLAGS=-O0, about 10 s; --no-rerun skips all this). The venvs are made
  once, with pip from PyPI, in build/bench-venvs (the tool itself reinstalled each time).
- What the pyz's start pays per run for its cache, inside the process: hashing the pyz (its
  key) and checking the unpacked tree against its manifest.
- `env -i VENV/bin/python -c pass` in a venv bound by `install --venv` (its hook, as the tool
  renders it) against the same in an unbound venv of the same python: what a bound python that
  never imports sqlite3 pays at start-up (the target: a ratio of 1.05 or less).

Each command runs --repeat times in turn (A B A B ...) after one warm-up; the table gives the
median wall time of each and the median of the pair-by-pair ratios. It asserts nothing.

    python bench/startup.py [--repeat 15] [--pyz dist/sqlite-provision.pyz] [--out FILE.json]
                            [--tarballs DIR] [--no-rerun]
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
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
PYENV = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
VENVS = REPO / "build" / "bench-venvs"
TARBALL = "sqlite-autoconf-3440200.tar.gz"
RERUN_PYTHONS = ("3.6", "3.13")


def interpreter(minor: str) -> Optional[str]:
    found = sorted(glob.glob(str(PYENV / "versions" / f"{minor}.*" / "bin" / f"python{minor}")))
    return found[-1] if found else None


def wall(argv: Sequence[str], env: Dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # noqa: S603
    return time.perf_counter() - started


def paired(
    commands: Dict[str, List[str]],
    env: Dict[str, str],
    repeat: int,
    envs: Optional[Dict[str, Dict[str, str]]] = None,
) -> Dict[str, List[float]]:
    """Every command once per round, round after round: drift hits them all alike. `envs` gives
    a command an environment of its own."""
    envs = envs or {}
    for name, argv in commands.items():
        wall(argv, envs.get(name, env))  # warm-up: page cache, pyc, the pyz's cache
    times: Dict[str, List[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, argv in commands.items():
            times[name].append(wall(argv, envs.get(name, env)))
    return times


# --- the re-run ------------------------------------------------------------------------------


def installed_script(minor: str, python: str) -> Path:
    """build/bench-venvs/MINOR/bin/sqlite-provision: this checkout, installed by pip (21.3.1 on
    3.6, the last for it) with the dependencies pip picks for that python, bytecode compiled."""
    venv = VENVS / minor
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # the index alone, as on a host
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    if not (venv / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)  # noqa: S603
        if minor == "3.6":
            subprocess.run([*pip, "install", "pip==21.3.1"], env=env, check=True)  # noqa: S603
        subprocess.run([*pip, "install", str(REPO)], env=env, check=True)  # noqa: S603
    else:
        subprocess.run([*pip, "install", "--no-deps", "--force-reinstall", str(REPO)],  # noqa: S603
                       env=env, check=True)  # fmt: skip
    return venv / "bin" / "sqlite-provision"


def rerun_setup(work: Path, tarball: Path) -> Tuple[List[str], Dict[str, str]]:
    """The install's arguments and environment, after a first install with them."""
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
           "CFLAGS": "-O0", "SQLITE_PROVISION_CACHE_DIR": str(work / "cache"),
           "SQLITE_PROVISION_LOG_DIR": str(work / "log"),
           "SQLITE_PROVISION_LOCK_FILE": str(work / "lock")}  # fmt: skip
    args = ["install", "--tarball", str(tarball), "--prefix-root", str(work / "opt"),
            "--profile-file", str(work / "p.sh"), "--json"]  # fmt: skip
    tool = Path(sys.executable).parent / "sqlite-provision"
    first = subprocess.run([str(tool), *args], env=env, capture_output=True, text=True,  # noqa: S603
                           check=False)  # fmt: skip
    if first.returncode != 0 or not json.loads(first.stdout)["changed"]:
        raise SystemExit(f"bench: the first install failed:\n{first.stderr[-3000:]}")
    return args, env


def rerun_commands(
    pyz: Path, args: List[str], env: Dict[str, str]
) -> Tuple[Dict[str, List[str]], Dict[str, Dict[str, str]]]:
    commands: Dict[str, List[str]] = {}
    envs: Dict[str, Dict[str, str]] = {}
    for minor in RERUN_PYTHONS:
        python = interpreter(minor)
        if not python:
            continue
        commands[f"re-run: pyz on {minor}"] = [python, str(pyz), *args]
        commands[f"re-run: installed on {minor}"] = [str(installed_script(minor, python)), *args]
        commands[f"re-run: pyz on {minor}, no cache"] = [python, str(pyz), *args]
        envs[f"re-run: pyz on {minor}, no cache"] = {**env, "SQLITE_PROVISION_PYZ_CACHE": "0"}
    return commands, envs


CACHE_COST = """\
import os, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import _sqlite_provision_boot as boot
env = {"SQLITE_PROVISION_CACHE_DIR": sys.argv[2]}
entry = boot.cached(sys.argv[1], env)
key = os.path.basename(entry)
def ms(call):
    runs = []
    for _ in range(25):
        started = time.perf_counter()
        call()
        runs.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(runs), 2)
print(ms(lambda: boot.pyz_digest(boot.read_pyz(sys.argv[1]))),
      ms(lambda: os.close(boot.open_entry(entry, key, os.geteuid()))))
"""


def cache_cost(pyz: Path, env: Dict[str, str]) -> Dict[str, float]:
    """Milliseconds per start, inside CPython 3.6: the pyz's sha256, the entry's check."""
    python = interpreter("3.6") or sys.executable
    out = subprocess.run([python, "-c", CACHE_COST, str(pyz), env["SQLITE_PROVISION_CACHE_DIR"]],  # noqa: S603
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    return {"sha256 of the pyz": float(out[0]), "check of the cache entry": float(out[1])}


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


def row(
    name: str, value: Any, minimum: Any = "", target: str = "", ok: Optional[bool] = None
) -> Dict[str, Any]:
    verdict = "" if ok is None else ("ok" if ok else "MISSED")
    return {"measurement": name, "median_s": value, "min_s": minimum, "target": target, "": verdict}


def timing_rows(
    commands: Dict[str, List[str]], times: Dict[str, List[float]]
) -> List[Dict[str, Any]]:
    rows = []
    for name in commands:
        median = statistics.median(times[name])
        target = name == "pyz --help on 3.11"
        rows.append(row(name, round(median, 3), round(min(times[name]), 3),
                        "<= 0.25" if target else "", (median <= 0.25) if target else None))  # fmt: skip
    return rows


def ratio_rows(
    times: Dict[str, List[float]], instructions: Dict[str, Optional[int]]
) -> List[Dict[str, Any]]:
    bound = ratio(times, "bound venv: python -c pass", "unbound venv: python -c pass")
    rows = [row("bound / unbound venv, python -c pass (ratio of pairs)", round(bound, 3),
                target="<= 1.05", ok=bound <= 1.05)]  # fmt: skip
    if instructions["unbound"] and instructions["bound"]:
        rows.append(row("bound / unbound, instructions (valgrind, exact)",
                        round(instructions["bound"] / instructions["unbound"], 3)))  # fmt: skip
    if "pyz --help on 3.11" in times and "installed --help" in times:
        rows.append(row("--help: pyz on 3.11 / installed (ratio of pairs)",
                        round(ratio(times, "pyz --help on 3.11", "installed --help"), 2)))  # fmt: skip
    for minor in RERUN_PYTHONS:
        pyz, installed = f"re-run: pyz on {minor}", f"re-run: installed on {minor}"
        if pyz in times and installed in times:
            value = ratio(times, pyz, installed)
            rows.append(row(f"re-run on {minor}: pyz / installed (ratio of pairs)",
                            round(value, 2), target="<= 1.15", ok=value <= 1.15))  # fmt: skip
            before = ratio(times, f"{pyz}, no cache", installed)
            rows.append(row(f"re-run on {minor}: pyz without its cache / installed",
                            round(before, 2)))  # fmt: skip
    return rows


def measure(args: argparse.Namespace, work: Path) -> Dict[str, Any]:
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
           "SQLITE_PROVISION_CACHE_DIR": str(work / "help-cache")}  # fmt: skip
    commands: Dict[str, List[str]] = {}
    for minor in ("3.6", "3.11"):
        python = interpreter(minor)
        if python:
            commands[f"pyz --help on {minor}"] = [python, str(args.pyz), "--help"]
    installed = Path(sys.executable).parent / "sqlite-provision"
    if installed.exists():
        commands["installed --help"] = [str(installed), "--help"]
    for name, hooked in (("unbound", False), ("bound", True)):
        commands[f"{name} venv: python -c pass"] = [str(make_venv(work / name, hooked)),
                                                    "-c", "pass"]  # fmt: skip
    envs: Dict[str, Dict[str, str]] = {}
    costs: Dict[str, float] = {}
    tarball = args.tarballs / TARBALL if args.tarballs else None
    if args.rerun and tarball is not None and tarball.is_file():
        install_args, install_env = rerun_setup(work / "host", tarball)
        more, envs = rerun_commands(args.pyz, install_args, install_env)
        commands.update(more)
        envs.update({name: install_env for name in more if name not in envs})
        costs = cache_cost(args.pyz, install_env)
    elif args.rerun:
        print(f"bench: no {TARBALL} (--tarballs DIR): the re-run is not measured", file=sys.stderr)
    times = paired(commands, env, args.repeat, envs)
    instructions = {
        n: callgrind_instructions(work / n / "bin" / "python") for n in ("unbound", "bound")
    }
    rows = timing_rows(commands, times) + ratio_rows(times, instructions)
    rows += [
        row(f"per start on 3.6: {name} (ms, in the process)", value)
        for name, value in costs.items()
    ]
    return {"rows": rows, "times": times}


def default_tarballs() -> Optional[Path]:
    for candidate in (
        os.environ.get("SQLITE_PROVISION_TEST_TARBALLS"),
        REPO.parent / "shared" / "sqlite-tarballs",
    ):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--pyz", type=Path, default=REPO / "dist" / "sqlite-provision.pyz")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--tarballs", type=Path, default=default_tarballs(), help=f"the folder with {TARBALL}"
    )
    parser.add_argument("--no-rerun", dest="rerun", action="store_false", help="skip the re-run")
    args = parser.parse_args()
    if not args.pyz.is_file():
        subprocess.run([sys.executable, str(REPO / "scripts" / "build-pyz")], check=True)  # noqa: S603
    args.pyz = args.pyz.resolve()
    work = Path(tempfile.mkdtemp(prefix="sqlite-provision-bench-"))
    try:
        result = measure(args, work)
    finally:
        shutil.rmtree(str(work), ignore_errors=True)
    print(f"{'measurement':<56} {'median':>8} {'min':>8}  target")
    for line in result["rows"]:
        print(f"{line['measurement']:<56} {line['median_s']!s:>8} {line['min_s']!s:>8}  "
              f"{line['target']} {line['']}".rstrip())  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
