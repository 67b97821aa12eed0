"""Benchmark sqlite-provision against the classic recipe and the compiler's speed limit.

    python bench/run.py [--quick] [--out bench/results.json] [--tarballs DIR] [--keep]

One run measures, on the same machine and in the same minutes (ratios only mean something
that way, the machine being shared and noisy):

- for the autosetup tarball (3.52.0) and the autoconf-era one (3.44.2):
  - the classic recipe, `./configure && make && make install DESTDIR=...`, default flags;
  - the floor, one `gcc -fPIC -c sqlite3.c` with the tool's own CFLAGS (-O2 and its -D
    flags, read from `install --dry-run --json`); as diagnostics, shell.c compiled with the
    same flags (the autosetup Makefile compiles it only once the library is linked) and
    autosetup's jimsh0 (what configure compiles first on a host without tclsh);
  - a cold `sqlite-provision install --tarball ...` (no CFLAGS in the environment), with the
    tool's per-step seconds and how often its build log shows sqlite3.c being compiled;
  - the same command again (already provisioned);
- `sqlite-provision --help` and `install --dry-run` (best of N), and `python -X importtime`;
- `build --artifact` then `install --artifact`, when the tool has a `build` command;
- the peak RSS of `fetch.fetch_to_cache` downloading 200 MiB from a loopback server, against
  a child that only imports the module.

Wall seconds come with the CPU seconds of each command's process tree (RUSAGE_CHILDREN
deltas) and the 1-minute load when it began: on a shared machine the CPU column shows what
was compiled, the wall column what it cost. It prints a table and writes it, with every raw
number, as JSON to --out (plus a Markdown rendering for the README). Stdlib only, plus the tool
itself. Nothing is asserted: targets are reported as ok or MISSED.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import http.server
import json
import os
import platform
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
PRIMARY = "3.52.0"  # autosetup era, withdrawn upstream (needs --allow-withdrawn)
SECONDARY = "3.44.2"  # autoconf/libtool era
TARBALLS = {
    "3.52.0": "sqlite-autoconf-3520000.tar.gz",
    "3.44.2": "sqlite-autoconf-3440200.tar.gz",
}
RSS_FILE_BYTES = 200 * 1024 * 1024

TARGETS = {
    "cold_over_floor": 1.2,  # at most
    "classic_over_cold": 2.5,  # at least
    "rerun_seconds": 1.0,
    "help_seconds": 0.25,
    "dry_run_seconds": 0.25,
    "artifact_install_seconds": 2.0,
}
LAZY_MODULES = ("requests", "urllib3", "jinja2", "distro", "charset_normalizer", "idna")

Result = Dict[str, Any]


# ---------------------------------------------------------------- helpers


def say(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def load1() -> float:
    return round(os.getloadavg()[0], 2)


class Timed:
    """A finished command: wall seconds, CPU seconds of its whole process tree, its result."""

    def __init__(self, wall: float, cpu: float, result: subprocess.CompletedProcess[str]) -> None:
        self.wall = wall
        self.cpu = cpu
        self.result = result


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    argv: Sequence[str],
    *,
    cwd: Optional[Path] = None,
    env: Optional[Dict[str, str]] = None,
    timeout: float = 3600.0,
) -> Timed:
    """Run argv (never a shell) and capture its output.

    CPU time is the RUSAGE_CHILDREN delta: user + system seconds of the command and every
    descendant it waited for (make's compilers). Unlike wall time it hardly moves when other
    work shares the machine, so it shows whether anything was compiled twice.
    """
    cpu_before = children_cpu()
    started = time.perf_counter()
    result = subprocess.run(  # noqa: S603 - argv lists built here, no shell
        [str(a) for a in argv],
        cwd=str(cwd) if cwd else None,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    wall = time.perf_counter() - started
    return Timed(wall, children_cpu() - cpu_before, result)


def must(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-25:]
        raise SystemExit(f"bench: {what} failed (exit {result.returncode}):\n" + "\n".join(tail))


def tool_argv() -> List[str]:
    """The console script beside this python (not a pyenv shim, which adds its own startup)."""
    beside = Path(sys.executable).parent / "sqlite-provision"
    if beside.is_file() and os.access(str(beside), os.X_OK):
        return [str(beside)]
    found = shutil.which("sqlite-provision")
    return [found] if found else [sys.executable, "-m", "sqlite_provision"]


def tool_env(root: Path) -> Dict[str, str]:
    """The caller's environment without CFLAGS (default -O2), with the tool's state in root."""
    env = dict(os.environ)
    for name in ("CFLAGS", "SQLITE_PROVISION_MIRROR", "LD_LIBRARY_PATH"):
        env.pop(name, None)
    # As on a host: python3 on PATH is an interpreter, not a pyenv shim (a bash script that adds
    # about 0.13 s to each python the tool starts), and bytecode is written as pip would have.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    real_bin = str(Path(sys.executable).resolve().parent)
    env["PATH"] = os.pathsep.join([real_bin, env.get("PATH", "")])
    env["SQLITE_PROVISION_CACHE_DIR"] = str(root / "cache")
    env["SQLITE_PROVISION_LOG_DIR"] = str(root / "log")
    env["SQLITE_PROVISION_LOCK_FILE"] = str(root / "lock")
    return env


def classic_env() -> Dict[str, str]:
    env = dict(os.environ)
    for name in ("CFLAGS", "CPPFLAGS", "LDFLAGS", "MAKEFLAGS"):
        env.pop(name, None)
    return env


def unpack(tarball: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(str(tarball)) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(str(into), filter="data")
        else:  # Python < 3.8.17 / 3.11.4: the tarballs are checksummed upstream releases
            archive.extractall(str(into))  # noqa: S202
    (srcdir,) = [p for p in into.iterdir() if p.is_dir()]
    return srcdir


def install_argv(tarball: Path, root: Path) -> List[str]:
    return [
        *tool_argv(),
        "install",
        "--tarball",
        str(tarball),
        "--allow-withdrawn",
        "--prefix-root",
        str(root / "opt"),
        "--profile-file",
        str(root / "p.sh"),
        "--json",
    ]


def parse_json(text: str) -> Optional[Dict[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def best_of(argv: Sequence[str], env: Dict[str, str], repeat: int) -> Result:
    times = []
    for _ in range(repeat):
        timed = run(argv, env=env)
        must(timed.result, " ".join(argv[-3:]))
        times.append(timed.wall)
    return {
        "seconds": round(min(times), 3),
        "median": round(sorted(times)[len(times) // 2], 3),
        "runs": [round(t, 3) for t in times],
    }


def steps_of(report: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    if not report:
        return []
    return [
        {
            "name": s.get("name"),
            "status": s.get("status"),
            "seconds": s.get("seconds"),
            "detail": s.get("detail"),
        }
        for s in report.get("steps") or []
    ]


def timing(timed: Timed, load: float, **extra: Any) -> Result:
    return dict(
        {"seconds": round(timed.wall, 3), "cpu": round(timed.cpu, 2), "load1": load}, **extra
    )


# ---------------------------------------------------------------- the tool's own view of a build


def dry_run_plan(tarball: Path, root: Path) -> Result:
    """The configure step's CFLAGS and argv, from `install --dry-run --json`."""
    timed = run([*install_argv(tarball, root), "--dry-run"], env=tool_env(root))
    must(timed.result, f"install --dry-run for {tarball.name}")
    plan = json.loads(timed.result.stdout)
    (step,) = [s for s in plan["steps"] if s["name"] == "configure"]
    match = re.search(r"CFLAGS=((['\"]).*\2)", step["description"])
    if not match:
        raise SystemExit(f"bench: no CFLAGS in the configure step: {step['description']!r}")
    return {
        "cflags": ast.literal_eval(match.group(1)),
        # the configure step first asks `configure --help` which options this tree lists
        "configure": next((c for c in step["commands"] if not c.endswith("--help")), ""),
        "make": [" ".join(s["commands"]) for s in plan["steps"] if s["name"] == "make"],
    }


_COMPILER = re.compile(r"^(?:\S*-)?(?:gcc|cc|clang)(?:-[\d.]+)?$")


def sqlite3_c_compiles(log_text: str) -> List[str]:
    """Compiler invocations in a build log that take sqlite3.c as an input.

    make echoes each command, continuation lines included (autosetup: `cc -c sqlite3.c ...`;
    its static shell: `cc -o sqlite3 \\` then `shell.c sqlite3.c ...`); libtool echoes its
    wrapper (`libtool --mode=compile gcc ...`) and then each real compile as
    `libtool: compile:  gcc ...`, once per PIC and non-PIC object. Only real compiler
    invocations are counted.
    """
    found = []
    joined = re.sub(r"\\\n", " ", log_text)
    for raw in joined.splitlines():
        line = re.sub(r"^\[\d\d:\d\d:\d\d\] ", "", raw).strip()
        line = re.sub(r"^libtool: (?:compile|link): +", "", line)
        if line.startswith("$ ") or "--mode=" in line:
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        if not words or not _COMPILER.match(os.path.basename(words[0])):
            continue
        if any(os.path.basename(w) == "sqlite3.c" for w in words[1:]):
            line = re.sub(r"\s+", " ", line)
            found.append(line if len(line) <= 300 else line[:297] + "...")
    return found


def log_files(root: Path) -> List[Path]:
    return sorted((root / "log").glob("*.log"), key=lambda p: p.stat().st_mtime)


def logged_commands(text: str) -> List[str]:
    return [
        re.sub(r"^\[\d\d:\d\d:\d\d\] \$ ", "", line)
        for line in text.splitlines()
        if re.match(r"^\[\d\d:\d\d:\d\d\] \$ ", line)
    ]


# ---------------------------------------------------------------- measurements


def measure_floor(tarball: Path, cflags: str, work: Path) -> Result:
    """gcc on sqlite3.c with the tool's CFLAGS; shell.c and jimsh0 alone, as diagnostics."""
    srcdir = unpack(tarball, work / "floor")
    flags = shlex.split(cflags)
    env = classic_env()
    argv = ["gcc", "-fPIC", "-c", "sqlite3.c", "-o", str(work / "floor-sqlite3.o"), *flags]
    load = load1()
    timed = run(argv, cwd=srcdir, env=env)
    must(timed.result, "the floor compile")
    out = timing(timed, load, argv=" ".join(shlex.quote(a) for a in argv))
    # The autosetup Makefile compiles and links the shell in one command that needs the
    # library first, so this compile follows sqlite3.c instead of running beside it.
    shell_argv = ["gcc", "-c", "shell.c", "-o", str(work / "floor-shell.o"), *flags]
    shell = run(shell_argv, cwd=srcdir, env=env)
    must(shell.result, "the shell.c compile")
    out["shell_c"] = timing(shell, load1(), argv=" ".join(shlex.quote(a) for a in shell_argv))
    # autosetup builds this Tcl interpreter first when the host has no tclsh or jimsh
    # (RHEL minimal images), exactly as autosetup/autosetup-find-tclsh does it.
    if (srcdir / "autosetup" / "jimsh0.c").is_file():
        jim = run(["cc", "-o", str(work / "jimsh0"), "autosetup/jimsh0.c"], cwd=srcdir, env=env)
        must(jim.result, "the jimsh0 compile")
        out["jimsh0"] = timing(jim, load1(), argv="cc -o jimsh0 autosetup/jimsh0.c")
    return out


def measure_classic(tarball: Path, work: Path) -> Result:
    srcdir = unpack(tarball, work / "classic")
    env = classic_env()
    parts: Dict[str, Result] = {}
    load = load1()
    compiles: List[str] = []
    for name, argv in (
        ("configure", ["./configure"]),
        ("make", ["make"]),
        ("make_install", ["make", "install", f"DESTDIR={work / 'classic-destdir'}"]),
    ):
        timed = run(argv, cwd=srcdir, env=env)
        must(timed.result, f"classic {name}")
        parts[name] = {"seconds": round(timed.wall, 2), "cpu": round(timed.cpu, 2)}
        compiles += sqlite3_c_compiles(timed.result.stdout + timed.result.stderr)
    return {
        "seconds": round(sum(p["seconds"] for p in parts.values()), 2),
        "cpu": round(sum(p["cpu"] for p in parts.values()), 2),
        "load1": load,
        "parts": parts,
        "sqlite3_c_compiles": len(compiles),
        "compile_lines": compiles,
    }


def measure_install(argv: Sequence[str], root: Path) -> Result:
    """One `sqlite-provision install --json` run: wall, CPU, the tool's steps, its build log."""
    load = load1()
    timed = run(argv, env=tool_env(root))
    report = parse_json(timed.result.stdout)
    logs = log_files(root)
    text = logs[-1].read_text(encoding="utf-8", errors="replace") if logs else ""
    compiles = sqlite3_c_compiles(text)
    out = timing(
        timed,
        load,
        argv=" ".join(shlex.quote(a) for a in argv),
        exit=timed.result.returncode,
        changed=report.get("changed") if report else None,
        steps=steps_of(report),
        sqlite3_c_compiles=len(compiles),
        compile_lines=compiles,
        log_commands=logged_commands(text),
    )
    if timed.result.returncode != 0:
        out["error"] = (report or {}).get("error") or timed.result.stderr.strip()[-2000:]
    return out


def importtime(args: Sequence[str], env: Dict[str, str]) -> Result:
    """`python -X importtime -m sqlite_provision ARGS`: the top modules and the lazy ones."""
    argv = [sys.executable, "-X", "importtime", "-m", "sqlite_provision", *args]
    result = run(argv, env=env).result
    rows = []
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if match:
            rows.append((int(match.group(2)), len(match.group(3)) // 2, match.group(4)))
    names = {name for _, _, name in rows}
    top = sorted((r for r in rows if r[1] == 0), reverse=True)[:10]
    return {
        "exit": result.returncode,
        "total_ms": round(sum(c for c, depth, _ in rows if depth == 0) / 1000, 1),
        "modules": len(names),
        "top": [{"module": name, "cumulative_ms": round(c / 1000, 1)} for c, _, name in top],
        "lazy_imported": sorted(
            m for m in LAZY_MODULES if m in names or any(n.startswith(m + ".") for n in names)
        ),
    }


def measure_cli(tarball: Path, root: Path, repeat: int) -> Result:
    env = tool_env(root)
    load = load1()
    help_ = best_of([*tool_argv(), "--help"], env, repeat)
    dry = best_of([*install_argv(tarball, root), "--dry-run"], env, repeat)
    dry_args = [*install_argv(tarball, root)[len(tool_argv()) :], "--dry-run"]
    help_["load1"] = dry["load1"] = load
    return {
        "help": help_,
        "dry_run": dry,
        "importtime_help": importtime(["--help"], env),
        "importtime_dry_run": importtime(dry_args, env),
    }


def measure_artifact(tarball: Path, root: Path) -> Result:
    env = tool_env(root)
    helped = run([*tool_argv(), "build", "--help"], env=env).result
    if helped.returncode != 0:
        return {"skipped": "this version of the tool has no `build` command (build --help fails)"}
    artifact = root / "sqlite.tar.gz"
    argv = [*tool_argv(), "build", "--artifact", str(artifact), "--tarball", str(tarball)]
    for option, value in (("--allow-withdrawn", None), ("--prefix-root", root / "opt")):
        if option in helped.stdout:
            argv += [option] if value is None else [option, str(value)]
    if "--json" in helped.stdout:
        argv.append("--json")
    build = measure_install(argv, root / "build")
    out: Result = {"build": build}
    if build["exit"] != 0 or not artifact.is_file():
        out["skipped"] = "build --artifact failed: " + str(build.get("error"))[-1500:]
        return out
    out["artifact_bytes"] = artifact.stat().st_size
    argv = [
        *tool_argv(),
        "install",
        "--artifact",
        str(artifact),
        "--prefix-root",
        str(root / "deploy"),
        "--profile-file",
        str(root / "deploy.sh"),
        "--json",
    ]
    out["install"] = measure_install(argv, root / "deploy-state")
    return out


# ---------------------------------------------------------------- peak RSS while downloading


class _FileHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    served: Path

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/" + self.served.name:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(self.served.stat().st_size))
        self.end_headers()
        with self.served.open("rb") as handle:
            shutil.copyfileobj(handle, self.wfile, 1024 * 1024)


# The wrapper reports RUSAGE_CHILDREN for its one child: the peak RSS of that child alone,
# whatever this benchmark process has run before (gcc's peak would otherwise show).
_WRAPPER = """
import json, resource, subprocess, sys
started = __import__("time").perf_counter()
result = subprocess.run([sys.executable, "-c"] + sys.argv[1:], capture_output=True, text=True)
seconds = __import__("time").perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"exit": result.returncode, "maxrss_kib": usage.ru_maxrss, "seconds": seconds,
                  "stdout": result.stdout[-500:], "stderr": result.stderr[-1500:]}))
"""
_BASELINE = "import sqlite_provision.source.fetch"
_BASELINE_REQUESTS = (
    "import sqlite_provision.source.fetch\nsqlite_provision.source.fetch.make_session()"
)
_FETCH = """
import sys
from pathlib import Path
from sqlite_provision.digests import Checksum
from sqlite_provision.source.fetch import fetch_to_cache
url, cache, name, digest = sys.argv[1:5]
result = fetch_to_cache(url, Path(cache), name, Checksum("sha256", digest))
assert result.downloaded and result.bytes == int(sys.argv[5]), result
"""


def in_child(code: str, *args: str) -> Result:
    result = run([sys.executable, "-c", _WRAPPER, code, *args], env=classic_env()).result
    must(result, "the RSS wrapper")
    data: Result = json.loads(result.stdout)
    if data["exit"] != 0:
        raise SystemExit("bench: RSS child failed:\n" + data["stderr"])
    return {"maxrss_mib": round(data["maxrss_kib"] / 1024, 1), "seconds": round(data["seconds"], 2)}


def measure_rss(work: Path) -> Result:
    served = work / "sqlite-autoconf-9990000.tar.gz"
    digest = hashlib.sha256()
    with served.open("wb") as out:
        for _ in range(RSS_FILE_BYTES // (1024 * 1024)):
            chunk = os.urandom(1024 * 1024)
            digest.update(chunk)
            out.write(chunk)
    handler = type("Handler", (_FileHandler,), {"served": served})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{served.name}"
        baseline = in_child(_BASELINE)
        with_requests = in_child(_BASELINE_REQUESTS)
        cache = work / "rss-cache"
        fetched = in_child(
            _FETCH, url, str(cache), served.name, digest.hexdigest(), str(RSS_FILE_BYTES)
        )
    finally:
        server.shutdown()
        server.server_close()
        served.unlink()
        shutil.rmtree(str(work / "rss-cache"), ignore_errors=True)
    return {
        "file_mib": RSS_FILE_BYTES // (1024 * 1024),
        "baseline_import_mib": baseline["maxrss_mib"],
        "baseline_session_mib": with_requests["maxrss_mib"],
        "fetch_mib": fetched["maxrss_mib"],
        "fetch_seconds": fetched["seconds"],
        "growth_over_import_mib": round(fetched["maxrss_mib"] - baseline["maxrss_mib"], 1),
        "growth_over_session_mib": round(fetched["maxrss_mib"] - with_requests["maxrss_mib"], 1),
    }


# ---------------------------------------------------------------- the machine


def machine() -> Result:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gcc = run(["gcc", "--version"]).result
    make = run(["make", "--version"]).result
    commit = run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]).result
    version = run([*tool_argv(), "--version"]).result
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "gcc": gcc.stdout.splitlines()[0] if gcc.stdout else "",
        "make": make.stdout.splitlines()[0] if make.stdout else "",
        "tool": version.stdout.strip(),
        "tool_argv": tool_argv(),
        "commit": commit.stdout.strip(),
        "tclsh": shutil.which("tclsh") or "",
    }


# ---------------------------------------------------------------- the table


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return round(a / b, 2) if a and b else None


def ok_seconds(data: Optional[Result], unchanged: Optional[bool] = None) -> Optional[Result]:
    """The measurement if it succeeded (and, for re-runs, changed nothing)."""
    if not data or "seconds" not in data or data.get("exit", 0) != 0:
        return None
    if unchanged is not None:
        expected_changed = not unchanged
        if data.get("changed") is not expected_changed:
            return None
    return data


def make_table(results: Result) -> List[Result]:
    rows: List[Result] = []

    def row(
        name: str,
        value: Optional[float],
        unit: str = "s",
        cpu: Optional[float] = None,
        load: Optional[float] = None,
        target: str = "",
        ok: Optional[bool] = None,
    ) -> None:
        rows.append(
            {
                "row": name,
                "value": value,
                "unit": unit,
                "cpu": cpu,
                "load1": load,
                "target": target,
                "status": "" if ok is None else ("ok" if ok else "MISSED"),
            }
        )

    def check(value: Optional[float], bound: float, at_least: bool = False) -> Optional[bool]:
        if value is None:
            return None
        return value >= bound if at_least else value <= bound

    for version, data in results["versions"].items():
        classic = ok_seconds(data.get("classic"))
        floor = ok_seconds(data["floor"])
        cold = ok_seconds(data["cold"])
        rerun = ok_seconds(data["rerun"], unchanged=True)

        def sec(d: Optional[Result]) -> Optional[float]:
            return d["seconds"] if d else None

        def cpu(d: Optional[Result]) -> Optional[float]:
            return d["cpu"] if d else None

        def load(d: Optional[Result]) -> Optional[float]:
            return d["load1"] if d else None

        label = f"{version} ({data.get('era', '')})"
        if classic:
            row(f"{label} classic configure && make && make install", *_scl(classic))
        else:
            row(f"{label} classic recipe (skipped: --quick)", None)
        row(f"{label} floor: gcc -O2 -fPIC -c sqlite3.c", *_scl(floor))
        row(f"{label} cold provision", *_scl(cold))
        value = ratio(sec(cold), sec(floor))
        row(
            f"{label} cold / floor",
            value,
            "x",
            ratio(cpu(cold), cpu(floor)),
            target=f"<= {TARGETS['cold_over_floor']}",
            ok=check(value, TARGETS["cold_over_floor"]),
        )
        value = ratio(sec(classic), sec(cold))
        row(
            f"{label} classic / cold",
            value,
            "x",
            ratio(cpu(classic), cpu(cold)),
            target=f">= {TARGETS['classic_over_cold']}",
            ok=check(value, TARGETS["classic_over_cold"], at_least=True),
        )
        # One compile of sqlite3.c is the least any build does: classic / floor bounds
        # classic / cold from above.
        row(
            f"{label} classic / floor (the most classic / cold can be)",
            ratio(sec(classic), sec(floor)),
            "x",
            ratio(cpu(classic), cpu(floor)),
        )
        row(
            f"{label} re-run, already provisioned",
            sec(rerun),
            "s",
            cpu(rerun),
            load(rerun),
            target=f"<= {TARGETS['rerun_seconds']}",
            ok=check(sec(rerun), TARGETS["rerun_seconds"]),
        )
    cli = results["cli"]
    for key, label in (("help", "sqlite-provision --help"), ("dry_run", "install --dry-run")):
        value = cli[key]["seconds"]
        target = TARGETS[f"{key}_seconds"]
        row(
            f"{label} (best of {len(cli[key]['runs'])})",
            value,
            load=cli[key]["load1"],
            target=f"<= {target}",
            ok=check(value, target),
        )
    art = results["artifact"]
    installed = ok_seconds(art.get("install"), unchanged=False)
    if ok_seconds(art.get("build")):
        row(f"{PRIMARY} build --artifact (once, on the build host)", *_scl(art["build"]))
    if installed:
        target = TARGETS["artifact_install_seconds"]
        row(
            f"{PRIMARY} install --artifact (per host)",
            *_scl(installed),
            target=f"<= {target}",
            ok=check(installed["seconds"], target),
        )
    else:
        row(f"{PRIMARY} install --artifact: skipped, {art.get('skipped', '')[:60]}", None)
    rss = results["rss"]
    row("fetch 200 MiB from loopback: peak RSS of the child", rss["fetch_mib"], "MiB")
    row("fetch baseline: a child that only imports the module", rss["baseline_import_mib"], "MiB")
    row("fetch baseline: import + a requests session", rss["baseline_session_mib"], "MiB")
    growth = rss["growth_over_session_mib"]
    row("fetch: RSS growth while downloading", growth, "MiB", target="flat (< 16)", ok=growth < 16)
    return rows


def _scl(d: Optional[Result]) -> Tuple[Optional[float], str, Optional[float], Optional[float]]:
    if not d:
        return None, "s", None, None
    return d["seconds"], "s", d.get("cpu"), d.get("load1")


def render(rows: List[Result]) -> str:
    width = max(len(r["row"]) for r in rows)
    head = f"{'measurement':<{width}}  {'wall':>10}  {'cpu':>7}  {'load':>5}  {'target':<12} status"
    lines = [head, "-" * len(head)]
    for r in rows:
        value = "-" if r["value"] is None else f"{r['value']:.2f} {r['unit']}"
        cpu = "" if r["cpu"] is None else f"{r['cpu']:.2f}"
        load = "" if r["load1"] is None else f"{r['load1']:.2f}"
        lines.append(
            f"{r['row']:<{width}}  {value:>10}  {cpu:>7}  {load:>5}  {r['target']:<12} "
            f"{r['status']}".rstrip()
        )
    return "\n".join(lines)


def markdown(rows: List[Result]) -> str:
    """The same table for the README."""
    lines = [
        "| measurement | wall | CPU s | load | target | |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        value = "-" if r["value"] is None else f"{r['value']:.2f} {r['unit']}"
        cpu = "" if r["cpu"] is None else f"{r['cpu']:.2f}" + (" x" if r["unit"] == "x" else "")
        load = "" if r["load1"] is None else f"{r['load1']:.2f}"
        name = r["row"].strip().replace("|", "\\|")
        lines.append(f"| {name} | {value} | {cpu} | {load} | {r['target']} | {r['status']} |")
    return "\n".join(lines)


def summary(results: Result) -> List[str]:
    """Where the time went: the tool's steps, compiles counted in the logs, the diagnostics."""
    lines = []
    for version, data in results["versions"].items():
        cold = data["cold"]
        steps = ", ".join(f"{s['name']} {s['seconds']:.2f}" for s in cold["steps"] if s["seconds"])
        floor = data["floor"]
        extra = f"shell.c alone {floor['shell_c']['seconds']:.2f} s"
        if "jimsh0" in floor:
            extra += f", jimsh0 (configure without tclsh) {floor['jimsh0']['seconds']:.2f} s"
        classic = data.get("classic") or {}
        parts = classic.get("parts")
        lines.append(
            f"{version} cold steps (s): {steps}. sqlite3.c compiled {cold['sqlite3_c_compiles']}x"
            f" (classic: {classic.get('sqlite3_c_compiles', '-')}x"
            + (
                ", configure {configure[seconds]:.1f} s, make {make[seconds]:.1f} s".format(**parts)
                if parts
                else ""
            )
            + f"); {extra}"
        )
    return lines


# ---------------------------------------------------------------- main


def default_tarballs() -> Path:
    for candidate in (
        os.environ.get("SQLITE_PROVISION_TEST_TARBALLS"),
        str(REPO.parent / "shared" / "sqlite-tarballs"),
    ):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return REPO.parent / "shared" / "sqlite-tarballs"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the classic recipe for 3.44.2")
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results.json", help="the JSON to write"
    )
    parser.add_argument(
        "--tarballs",
        type=Path,
        default=default_tarballs(),
        help="the folder with sqlite-autoconf-3520000.tar.gz and sqlite-autoconf-3440200.tar.gz",
    )
    parser.add_argument("--repeat", type=int, default=10, help="runs of --help and --dry-run")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)

    tarballs = {v: args.tarballs / name for v, name in TARBALLS.items()}
    for path in tarballs.values():
        if not path.is_file():
            parser.error(f"{path} not found (pass --tarballs DIR)")
    work = Path(tempfile.mkdtemp(prefix="sqlite-provision-bench-"))
    started = time.time()
    results: Result = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(started)),
        "quick": args.quick,
        "machine": machine(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "versions": {},
    }
    say(f"work directory {work}; load {results['loadavg_start']}")
    try:
        say("--help, --dry-run and importtime")
        results["cli"] = measure_cli(tarballs[PRIMARY], work / "cli", args.repeat)
        say("peak RSS of a 200 MiB download")
        results["rss"] = measure_rss(work)
        for version in (PRIMARY, SECONDARY):
            tarball = tarballs[version]
            vwork = work / version
            data: Result = {"tarball": str(tarball)}
            plan = dry_run_plan(tarball, vwork / "plan")
            data["plan"] = plan
            say(f"{version}: floor compile")
            data["floor"] = measure_floor(tarball, plan["cflags"], vwork)
            say(f"{version}: cold provision")
            data["cold"] = measure_install(install_argv(tarball, vwork / "tool"), vwork / "tool")
            data["era"] = "autosetup" if plan["configure"].count("--soname") else "autoconf"
            say(f"{version}: re-run")
            data["rerun"] = measure_install(install_argv(tarball, vwork / "tool"), vwork / "tool")
            if args.quick and version != PRIMARY:
                data["classic"] = {"skipped": "--quick"}
            else:
                say(f"{version}: classic recipe")
                data["classic"] = measure_classic(tarball, vwork)
            results["versions"][version] = data
            shutil.rmtree(str(vwork / "floor"), ignore_errors=True)
            shutil.rmtree(str(vwork / "classic"), ignore_errors=True)
        say("artifact build and install")
        results["artifact"] = measure_artifact(tarballs[PRIMARY], work / "artifact")
    finally:
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(str(work), ignore_errors=True)
    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["seconds"] = round(time.time() - started, 1)
    results["table"] = make_table(results)
    m = results["machine"]
    print(
        f"sqlite-provision bench, {results['started']}: {m['nproc']} x {m['cpu_model']}, "
        f"load {results['loadavg_start']} -> {results['loadavg_end']}, {m['gcc']}, "
        f"{results['seconds']:.0f} s"
    )
    print(render(results["table"]))
    results["summary"] = summary(results)
    print("\n".join(results["summary"]))
    results["markdown"] = markdown(results["table"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
