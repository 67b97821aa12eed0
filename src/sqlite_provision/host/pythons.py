"""What each python loads: a fresh process with the activation environment (or none), asked
which SQLite it reports and which libsqlite3 file it mapped (/proc/self/maps).

The probe script is tiny and runs on Python 2.7 and 3.6+ too (RHEL 8's platform-python is 3.6),
so it avoids f-strings and anything newer.
"""

import json
import os
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from sqlite_provision.errors import HostError, UsageError, VerifyError
from sqlite_provision.results import ProbeResult
from sqlite_provision.runner import Runner, clean_env
from sqlite_provision.versions import loose_version

PROBE_SCRIPT = r"""
import json, sys
out = {"python": sys.executable, "python_version": "%d.%d.%d" % tuple(sys.version_info[:3]),
       "sqlite_version": None, "library": None, "compile_options": [], "error": None}
try:
    import sqlite3
    out["sqlite_version"] = sqlite3.sqlite_version
    con = sqlite3.connect(":memory:")
    out["compile_options"] = [r[0] for r in con.execute("PRAGMA compile_options")]
    con.close()
except Exception as exc:
    out["error"] = "%s: %s" % (type(exc).__name__, exc)
try:
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(None, 5)
            if len(fields) == 6 and "/libsqlite3" in fields[5]:
                out["library"] = fields[5].strip()
                break
except (IOError, OSError):
    pass
sys.stdout.write(json.dumps(out) + "\n")
"""

LIBRARY_SCRIPT = r"""
import ctypes, json, sys
lib = ctypes.CDLL(sys.argv[1])
lib.sqlite3_libversion.restype = ctypes.c_char_p
lib.sqlite3_compileoption_get.restype = ctypes.c_char_p
lib.sqlite3_compileoption_get.argtypes = [ctypes.c_int]
options = []
while True:
    name = lib.sqlite3_compileoption_get(len(options))
    if name is None:
        break
    options.append(name.decode())
out = {"version": lib.sqlite3_libversion().decode(), "options": options}
"""

# Appended to LIBRARY_SCRIPT when the ABI gate asks the new library to prove capabilities
# (recipe/obsolete.py): each proof's SQL runs through ctypes, its result lands in out["proofs"].
PROOF_SCRIPT = r"""
out["proofs"] = {}
P, INT, I64, TEXT = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_char_p

def api(name, restype, *argtypes):
    function = getattr(lib, name)  # AttributeError: the library does not export it
    function.restype, function.argtypes = restype, list(argtypes)
    return function

def opened():
    db = P()
    if api("sqlite3_open", INT, TEXT, ctypes.POINTER(P))(b":memory:", ctypes.byref(db)):
        raise RuntimeError("sqlite3_open failed")
    return db

def failed(db, what):
    return RuntimeError("%s: %s" % (what, api("sqlite3_errmsg", TEXT, P)(db).decode()))

def run(db, sql):
    if api("sqlite3_exec", INT, P, TEXT, P, P, P)(db, sql.encode(), None, None, None):
        raise failed(db, sql)

def first(db, sql):
    stmt = P()
    if api("sqlite3_prepare_v2", INT, P, TEXT, INT, ctypes.POINTER(P), P)(
            db, sql.encode(), -1, ctypes.byref(stmt), None):
        raise failed(db, sql)
    try:
        if api("sqlite3_step", INT, P)(stmt) != 100:
            raise failed(db, sql)
        value = api("sqlite3_column_text", TEXT, P, INT)(stmt, 0)
        return None if value is None else value.decode()
    finally:
        api("sqlite3_finalize", INT, P)(stmt)

def copied(db):
    size = I64()
    data = api("sqlite3_serialize", P, P, TEXT, ctypes.POINTER(I64), ctypes.c_uint)(
        db, b"main", ctypes.byref(size), 0)
    if not data:
        raise failed(db, "sqlite3_serialize")
    copy = opened()
    # FREEONCLOSE | RESIZEABLE: the copy owns the sqlite3_malloc'd buffer from now on.
    if api("sqlite3_deserialize", INT, P, TEXT, P, I64, I64, ctypes.c_uint)(
            copy, b"main", data, size.value, size.value, 3):
        raise failed(copy, "sqlite3_deserialize")
    return copy

def prove(proof):
    db = opened()
    try:
        if proof["setup"]:
            run(db, proof["setup"])
        if proof["serialize"]:
            copy = copied(db)
            api("sqlite3_close", INT, P)(db)
            db = copy
        got = first(db, proof["query"])
        return [got == proof["expected"], repr(got)]
    finally:
        api("sqlite3_close", INT, P)(db)

for option, proof in sorted(json.loads(sys.argv[2]).items()):
    try:
        out["proofs"][option] = prove(proof)
    except (AttributeError, RuntimeError) as exc:
        out["proofs"][option] = [False, "%s: %s" % (type(exc).__name__, exc)]
"""

LIBRARY_OUTPUT = """
sys.stdout.write(json.dumps(out))
"""


VERSION_CHECK = "import sys; print(sys.version_info[0])"


def resolve_pythons(runner: Runner, requested: Sequence[str]) -> Tuple[str, ...]:
    """The pythons to verify: each --python, checked to be a python; else the python3 on PATH."""
    if not requested:
        found = shutil.which("python3")
        if not found:
            raise HostError("no python3 on PATH to verify", hint="pass --python /path/to/python")
        return (found,)
    result = []
    for python in requested:
        path = shutil.which(python) if os.sep not in python else python
        if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
            raise UsageError(
                f"--python {python}: no such executable",
                hint="pass the full path of a python interpreter",
            )
        answer = runner.capture([path, "-c", VERSION_CHECK], timeout=30)
        if answer.returncode != 0 or answer.stdout.strip() not in ("2", "3"):
            raise UsageError(
                f"--python {python} is not a python interpreter",
                hint="pass the full path of a python interpreter",
            )
        result.append(path)
    return tuple(result)


def activated_argv(argv: List[str], profile_file: Optional[Path]) -> List[str]:
    """argv run after sourcing the snippet, exactly as a login shell would; the arguments are
    passed as positional parameters, never interpolated into the shell text."""
    if profile_file is None:
        return argv
    return ["sh", "-c", '. "$1" && shift && exec "$@"', "sh", str(profile_file), *argv]


def probe_argv(python: str, profile_file: Optional[Path]) -> List[str]:
    return activated_argv([python, "-c", PROBE_SCRIPT], profile_file)


def probe_env(
    base: Mapping[str, str], lib_dir: Optional[Path], profile_file: Optional[Path]
) -> Dict[str, str]:
    """A fresh login's environment, from the tool's (`base`): no inherited LD_LIBRARY_PATH; the
    snippet (or, with --no-profile, the library directory itself) supplies it."""
    env = clean_env(base)
    if profile_file is None and lib_dir is not None:
        env["LD_LIBRARY_PATH"] = str(lib_dir)
    return env


# systemd's PATH for services: what a unit's process has, with the drop-in's Environment=.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"


@dataclass(frozen=True)
class Reach:
    """How a python is started to be verified: its command, its environment, and the words
    for it that the JSON `verified` rows carry (`reached`). The environment is a rule, not a
    copy: `env` set on top of the tool's environment less LD_LIBRARY_PATH (`inherit`, a
    login's), or `env` alone (systemd's, `env -i`'s), made from the runner's environment when
    the python is started, so that a plan holds no copy of the environment."""

    python: str
    argv: Tuple[str, ...]
    env: Tuple[Tuple[str, str], ...]
    how: str
    inherit: bool = True

    def environment(self, base: Mapping[str, str]) -> Dict[str, str]:
        env = clean_env(base) if self.inherit else {}
        env.update(self.env)
        return env


def login_reach(python: str, lib_dir: Path, profile_file: Optional[Path]) -> Reach:
    """A login shell through the profile snippet (or, with --no-profile, LD_LIBRARY_PATH)."""
    env: Tuple[Tuple[str, str], ...] = ()
    how = f"login shell: sources {profile_file}"
    if profile_file is None:
        env = (("LD_LIBRARY_PATH", str(lib_dir)),)
        how = f"LD_LIBRARY_PATH={lib_dir} (no profile snippet)"
    return Reach(python, tuple(probe_argv(python, profile_file)), env, how)


def venv_reach(venv_python: Path) -> Reach:
    """A bound venv's python in an empty environment, as `env -i` starts it."""
    python = str(venv_python)
    return Reach(python, (python, "-c", PROBE_SCRIPT), (), "bound venv, empty environment", False)


def unit_reach(python: str, unit: str, lib_dir: Path) -> Reach:
    """A python as a systemd unit with the drop-in starts it: systemd's PATH, and the drop-in's
    Environment=LD_LIBRARY_PATH."""
    env = (("LD_LIBRARY_PATH", str(lib_dir)), ("PATH", SYSTEMD_PATH))
    how = f"systemd unit {unit}.service: its drop-in"
    return Reach(python, (python, "-c", PROBE_SCRIPT), env, how, False)


def system_reach(python: str) -> Reach:
    return Reach(python, (python, "-c", PROBE_SCRIPT), (), "no activation")


def run_probe(
    runner: Runner, argv: List[str], env: Dict[str, str], timeout: float = 60.0
) -> Tuple[Optional[Dict[str, Any]], str]:
    result = runner.capture(argv, env=env, timeout=timeout)
    for line in reversed(result.stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line), ""
            except ValueError:
                break
    detail = (result.stderr or result.stdout).strip().splitlines()
    return None, "exit status {}: {}".format(
        result.returncode, " ".join(detail[-3:]) or "no output"
    )


def judge(
    python: str,
    data: Optional[Dict[str, Any]],
    error: str,
    *,
    prefix: Optional[Path],
    min_version: str,
    expected_version: Optional[str],
) -> ProbeResult:
    if data is None:
        return ProbeResult(python, None, None, None, False, f"the probe did not run ({error})")
    version, library = data.get("sqlite_version"), data.get("library")
    problem: Optional[str] = None
    if data.get("error"):
        problem = "import sqlite3 failed: {}".format(data["error"])
    elif not version:
        problem = "sqlite3 reported no version"
    elif loose_version(version) < loose_version(min_version):
        problem = f"SQLite {version} is older than the required {min_version}"
    elif expected_version and version != expected_version:
        problem = f"SQLite {version} loaded, expected {expected_version}"
    elif prefix is not None and not inside(library, prefix):
        problem = "the library mapped is {}, not one under {}".format(
            library or "(none: is _sqlite3 linked statically?)", prefix
        )
    return ProbeResult(
        python=python,
        python_version=data.get("python_version"),
        sqlite_version=version,
        library=library,
        ok=problem is None,
        problem=problem,
        compile_options=tuple(data.get("compile_options") or ()),
    )


def inside(path: Optional[str], prefix: Path) -> bool:
    if not path:
        return False
    real = os.path.realpath(path)
    root = os.path.realpath(str(prefix))
    return real == root or real.startswith(root.rstrip("/") + "/")


def verify_python(
    runner: Runner,
    reach: Reach,
    *,
    prefix: Optional[Path],
    min_version: str,
    expected_version: Optional[str] = None,
) -> ProbeResult:
    """Start a python as `reach` says and judge what it loads."""
    data, error = run_probe(runner, list(reach.argv), reach.environment(runner.environment))
    result = judge(
        reach.python,
        data,
        error,
        prefix=prefix,
        min_version=min_version,
        expected_version=expected_version,
    )
    return replace(result, reached=reach.how)


def system_probe(runner: Runner, python: str) -> ProbeResult:
    """What `python` loads on this host without any of our environment."""
    return verify_python(runner, system_reach(python), prefix=None, min_version="0")


def failures(results: Sequence[ProbeResult]) -> str:
    """Each python that failed, how it was reached, and why: "python (reach): problem; ..."."""
    said: List[str] = []
    for r in results:
        if r.ok:
            continue
        line = f"{r.python} ({r.reached}): {r.problem}" if r.reached else f"{r.python}: {r.problem}"
        if line not in said:
            said.append(line)
    return "; ".join(said)


def verification_failed(
    results: Sequence[ProbeResult], hint: str, failure: str = "verification failed", after: str = ""
) -> VerifyError:
    """The one wording of a failed verification (the verify command, and the Verify step of
    install and rollback): `failure`, each python that failed and why, then `after`."""
    return VerifyError(f"{failure}: {failures(results)}{after}", hint=hint)


ProofSpec = Mapping[str, object]  # recipe.obsolete.Proof.as_json()


def library_argv(lib_path: Path, proofs: Optional[Mapping[str, ProofSpec]] = None) -> List[str]:
    """The probe that reads a library file's version and compile options (through ctypes, in
    this tool's own python); with `proofs`, it also runs each under that library."""
    if not proofs:
        return [sys.executable, "-c", LIBRARY_SCRIPT + LIBRARY_OUTPUT, str(lib_path)]
    spec = json.dumps({option: dict(proof) for option, proof in proofs.items()}, sort_keys=True)
    script = LIBRARY_SCRIPT + PROOF_SCRIPT + LIBRARY_OUTPUT
    return [sys.executable, "-c", script, str(lib_path), spec]


@dataclass(frozen=True)
class LibraryReading:
    version: str
    options: List[str]
    proofs: Dict[str, Tuple[bool, str]]  # option -> (held, what the query gave or raised)


def probe_library(
    runner: Runner, lib_path: Path, proofs: Optional[Mapping[str, ProofSpec]] = None
) -> LibraryReading:
    """Version, compile options and proofs of a library file, read in a fresh process."""
    result = runner.capture(library_argv(lib_path, proofs), env=runner.clean_env())
    if result.returncode != 0:
        raise RuntimeError(
            "could not load {}: {}".format(lib_path, result.stderr.strip()[-500:] or "no output")
        )
    data = json.loads(result.stdout)
    return LibraryReading(
        version=str(data["version"]),
        options=[str(o) for o in data["options"]],
        proofs={str(k): (bool(v[0]), str(v[1])) for k, v in data.get("proofs", {}).items()},
    )


def read_library(runner: Runner, lib_path: Path) -> Tuple[str, List[str]]:
    """Version and compile options of a library file, read in a fresh process."""
    reading = probe_library(runner, lib_path)
    return reading.version, reading.options
