"""The start of sqlite-provision.pyz: run the tool from the pyz unpacked, with its bytecode, in a
cache that can be trusted; else from the zip, as before.

zipimport compiles every module from source at each start (the pyz carries no bytecode: one file
serves CPython 3.6 to 3.13), about 0.2 s of a re-run's 0.45 s. So the pyz unpacks itself once
into CACHE/pyz/<sha256 of the pyz>.<the python's cache tag>/, compiles it there, and later starts
import from that directory. scripts/build-pyz ships this file as the pyz's top-level
`_sqlite_provision_boot.py`: it runs before the package can be imported, with the standard
library alone, and nothing of the package imports it.

- Where: CACHE is the tool's own cache directory, found as config.cache_dir() finds it
  ($SQLITE_PROVISION_CACHE_DIR; as root /var/cache/sqlite-provision; else
  $XDG_CACHE_HOME/sqlite-provision).
- Nobody else can have written it (root runs this: a cache another user could write would be a
  privilege escalation): CACHE/pyz and the entry are the effective user's and writable by that
  user alone, and every directory above them is owned by root or that user and writable by
  nobody else, unless it is sticky (/tmp). The path is resolved once and checked from / down.
- It matches: an entry is unpacked into a temporary sibling, its files synced, its manifest
  (every file and directory with its size, mtime and mode) written last, then renamed into
  place. A start uses it only if the tree is exactly what the manifest lists, all of it owned by
  the user and writable by nobody else: a changed, added or removed file, or no manifest, and it
  is not used but rebuilt. Checking costs a stat per file (about 2 ms); hashing the pyz for its
  key about 3 ms on 3.6 (bench/startup.py measures both).
- Fail-safe: whatever goes wrong (an unwritable, full or read-only cache, an untrusted one, a
  race), the tool runs from the zip, exactly as without a cache; SQLITE_PROVISION_DEBUG=1 says
  why on stderr. SQLITE_PROVISION_PYZ_CACHE=0 turns the cache off; =DIR puts it in DIR (trusted
  by the same rules) instead of CACHE/pyz.
- Bounded: creating an entry removes the entries of other pyz files, except one in use: each
  process holds a shared lock on the manifest of the entry it runs from.
"""

import errno
import fcntl
import hashlib
import os
import re
import stat
import sys
import time
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

CACHE_ENV = "SQLITE_PROVISION_CACHE_DIR"
SWITCH_ENV = "SQLITE_PROVISION_PYZ_CACHE"
DEBUG_ENV = "SQLITE_PROVISION_DEBUG"
MANIFEST = ".manifest"
FORMAT = "sqlite-provision-pyz-cache 1"
STALE_SECONDS = 3600  # a temporary directory older than this was left by a killed start
ENTRY_NAME = re.compile(r"^[0-9a-f]{64}\.[A-Za-z0-9_.-]+$")
LEFTOVER_NAME = re.compile(r"^\.(tmp|old)-[0-9a-f]{64}\.")

Record = Tuple[str, int, int, int]  # kind ("f" or "d"), size, mtime_ns, mode (files only)

_held: List[int] = []  # the manifest this process runs from, open with its shared lock


class Untrusted(Exception):
    """The cache cannot be used, and why."""


def start(archive: str) -> str:
    """Put the tool on sys.path, from the cache or else from the zip; return which."""
    root = cached(archive) or archive
    if sys.path and os.path.abspath(sys.path[0]) == archive:
        sys.path[0] = root
    else:
        sys.path.insert(0, root)
    vendor = [os.path.join(root, "_vendor")]
    if sys.version_info < (3, 7):  # noqa: UP036 - the pyz runs on 3.6: the dataclasses backport
        vendor.insert(0, os.path.join(root, "_vendor36"))
    # After the tool itself, before site-packages: the pinned releases win over the host's.
    sys.path[1:1] = vendor
    return root


def cached(archive: str, env: Mapping[str, str] = os.environ) -> Optional[str]:
    """The trusted cache entry of this pyz, unpacked now if need be; None: run from the zip."""
    if env.get(SWITCH_ENV) == "0":
        return None
    try:
        entry = _cached(archive, env)
    except Exception as exc:  # whatever it is, the zip still works
        debug(env, f"running from the zip: {exc}")
        return None
    debug(env, f"running from {entry}")
    return entry


def debug(env: Mapping[str, str], text: str) -> None:
    if env.get(DEBUG_ENV):
        sys.stderr.write(f"sqlite-provision.pyz: {text}\n")


def _cached(archive: str, env: Mapping[str, str]) -> str:
    if not os.path.isfile(archive):
        raise Untrusted(f"{archive} is not a zip file")
    if getattr(sys, "pycache_prefix", None):
        raise Untrusted("PYTHONPYCACHEPREFIX sends bytecode elsewhere")
    tag = sys.implementation.cache_tag
    if not tag:
        raise Untrusted("this python writes no bytecode")
    if sys.flags.optimize:
        tag += f".opt-{sys.flags.optimize}"
    euid = os.geteuid()
    base = cache_base(env, euid)
    if not os.path.isdir(base):
        make_dirs(base)
    base = os.path.realpath(base)
    check_directories(base, euid)
    data = read_pyz(archive)  # hashed and unpacked alike: a pyz replaced meanwhile cannot mix
    digest = pyz_digest(data)
    key = f"{digest}.{tag}"
    entry = os.path.join(base, key)
    try:
        _held.append(open_entry(entry, key, euid))
        return entry
    except FileNotFoundError:
        if os.path.lexists(entry):
            set_aside(base, key)
    except (OSError, Untrusted) as exc:
        debug(env, f"not using {entry}: {exc}")
        set_aside(base, key)
    create(data, base, key)
    prune(base, digest)
    _held.append(open_entry(entry, key, euid))
    return entry


def cache_base(env: Mapping[str, str], euid: int) -> str:
    """$SQLITE_PROVISION_PYZ_CACHE when it names a directory (the tests share one); else
    CACHE/pyz, CACHE being the tool's cache directory (config.cache_dir)."""
    chosen = env.get(SWITCH_ENV, "")
    if chosen:
        if not os.path.isabs(chosen):
            raise Untrusted(f"{SWITCH_ENV} is neither 0 nor an absolute directory")
        return chosen
    if env.get(CACHE_ENV):
        top = env[CACHE_ENV]
    elif euid == 0:
        top = "/var/cache/sqlite-provision"
    else:
        xdg = env.get("XDG_CACHE_HOME", "")
        if not (xdg and os.path.isabs(xdg)):
            xdg = os.path.join(env.get("HOME", "/root"), ".cache")
        top = os.path.join(xdg, "sqlite-provision")
    return os.path.join(os.path.abspath(top), "pyz")


def make_dirs(path: str) -> None:
    """mkdir -p with mode 0755 whatever the umask (a umask of 002 would leave a directory that is
    then not trusted)."""
    parent = os.path.dirname(path)
    if parent != path and not os.path.isdir(parent):
        make_dirs(parent)
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        return
    os.chmod(path, 0o755)  # noqa: S103 - as the tool's own cache directory


def read_pyz(archive: str) -> bytes:
    with open(archive, "rb") as handle:
        return handle.read()


def pyz_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- trust -----------------------------------------------------------------------------------


def unsafe(st: os.stat_result, euid: int, own: bool, sticky_ok: bool = False) -> str:
    """Why a directory (or, with own, a file) could be changed by someone else than euid."""
    if st.st_uid != euid and (own or st.st_uid != 0):
        return f"is owned by uid {st.st_uid}"
    if st.st_mode & 0o022 and not (sticky_ok and st.st_mode & stat.S_ISVTX):
        return "is writable by group or others"
    return ""


def check_directories(path: str, euid: int) -> None:
    """Untrusted unless only euid (and root) can change what the real path `path` holds."""
    parts = [p for p in path.split("/") if p]
    for index in range(len(parts) + 1):
        here = "/" + "/".join(parts[:index])
        st = os.lstat(here)
        last = index == len(parts)
        why = "is not a directory" if not stat.S_ISDIR(st.st_mode) else ""
        why = why or unsafe(st, euid, own=last, sticky_ok=not last)
        if why:
            raise Untrusted(f"{here} {why}")


def record(st: os.stat_result) -> Record:
    if stat.S_ISDIR(st.st_mode):
        return ("d", 0, 0, 0)
    if stat.S_ISREG(st.st_mode):
        return ("f", st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode))
    return ("?", 0, 0, 0)


def walk(top: str) -> Iterator[Tuple[str, os.stat_result]]:
    """Every path under top (relative, with /), and its lstat."""
    pending = [""]
    while pending:
        rel = pending.pop()
        with os.scandir(os.path.join(top, rel)) as found:
            for item in found:
                path = f"{rel}/{item.name}" if rel else item.name
                st = item.stat(follow_symlinks=False)
                yield path, st
                if stat.S_ISDIR(st.st_mode):
                    pending.append(path)


def read_manifest(data: bytes, key: str) -> Dict[str, Record]:
    try:
        lines = data.decode("utf-8").split("\n")
        if lines[0] != f"{FORMAT} {key}" or lines[-1] != "":
            raise Untrusted("the manifest is not this pyz's")
        listed: Dict[str, Record] = {}
        for line in lines[1:-1]:
            kind, size, mtime, mode, path = line.split(" ", 4)
            listed[path] = (kind, int(size), int(mtime), int(mode, 8))
    except ValueError as exc:
        raise Untrusted(f"the manifest cannot be read: {exc}") from exc
    return listed


def manifest_text(top: str, key: str) -> str:
    lines = [f"{FORMAT} {key}"]
    for path, st in sorted(walk(top)):
        kind, size, mtime, mode = record(st)
        if kind == "?" or "\n" in path:
            raise Untrusted(f"cannot list {path!r}")
        lines.append(f"{kind} {size} {mtime} {mode:o} {path}")
    return "\n".join(lines) + "\n"


def check_tree(entry: str, listed: Dict[str, Record], euid: int) -> None:
    """Untrusted unless the tree is exactly what the manifest lists, all of it euid's and
    writable by euid alone."""
    why = unsafe(os.lstat(entry), euid, own=True)
    if why:
        raise Untrusted(f"{entry} {why}")
    seen = 0
    for path, st in walk(entry):
        if path == MANIFEST:
            continue
        if listed.get(path) != record(st):
            raise Untrusted(f"{path} differs from the manifest")
        why = unsafe(st, euid, own=True)
        if why:
            raise Untrusted(f"{path} {why}")
        seen += 1
    if seen != len(listed):
        raise Untrusted("files of the manifest are missing")


def lock(fd: int, how: int) -> None:
    """flock without waiting: BlockingIOError if another process holds it; a filesystem without
    locks (an old NFS) goes without, rather than rebuilding the entry at every start."""
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except BlockingIOError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            raise


def open_entry(entry: str, key: str, euid: int) -> int:
    """The entry's manifest, open and locked shared, if the tree matches it."""
    path = os.path.join(entry, MANIFEST)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        lock(fd, fcntl.LOCK_SH)
        opened = os.fstat(fd)
        why = unsafe(opened, euid, own=True)
        if why or not stat.S_ISREG(opened.st_mode):
            raise Untrusted(f"{path} {why or 'is not a file'}")
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        check_tree(entry, read_manifest(b"".join(chunks), key), euid)
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
            raise Untrusted(f"{entry} was replaced while it was checked")
    except BaseException:
        os.close(fd)
        raise
    return fd


# --- unpacking and removing ------------------------------------------------------------------


def create(pyz: bytes, base: str, key: str) -> None:
    """Unpack the pyz into a temporary sibling, compile it, sync it, write the manifest last and
    rename it into place. Another start that got there first wins: its entry is kept."""
    import shutil
    import tempfile

    temp = tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=base)
    try:
        unpack(pyz, temp)
        compile_tree(temp)
        for path, st in walk(temp):
            os.chmod(os.path.join(temp, path), 0o755 if stat.S_ISDIR(st.st_mode) else 0o644)
        sync_tree(temp)
        manifest = manifest_text(temp, key).encode("utf-8")
        write_file(os.path.join(temp, MANIFEST), manifest, sync=True)
        try:
            os.rename(temp, os.path.join(base, key))
        except OSError:
            if not os.path.isdir(os.path.join(base, key)):
                raise
            shutil.rmtree(temp, ignore_errors=True)  # another start made it meanwhile
        sync_dir(base)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def unpack(data: bytes, into: str) -> None:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as pyz:
        for info in pyz.infolist():
            parts = info.filename.rstrip("/").split("/")
            if any(p in ("", ".", "..") or "\\" in p or "\n" in p for p in parts):
                raise Untrusted(f"the pyz holds an odd name: {info.filename!r}")
            target = os.path.join(into, *parts)
            if info.filename.endswith("/"):
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            write_file(target, pyz.read(info))  # zipfile checks each member's CRC


def compile_tree(top: str) -> None:
    """Timestamp bytecode beside each module, for this python and optimization level."""
    import importlib.util
    import py_compile

    for path, _ in list(walk(top)):
        if not path.endswith(".py"):
            continue
        source = os.path.join(top, path)
        cfile = importlib.util.cache_from_source(source)
        try:
            if sys.version_info >= (3, 7):  # noqa: UP036 - SOURCE_DATE_EPOCH would pick hashes
                mode = py_compile.PycInvalidationMode.TIMESTAMP  # novermin
                py_compile.compile(source, cfile, doraise=True, invalidation_mode=mode)  # novermin
            else:
                py_compile.compile(source, cfile=cfile, doraise=True)
        except py_compile.PyCompileError:
            continue  # not for this python: importing it fails from the zip just the same


def write_file(path: str, data: bytes, sync: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def sync_tree(top: str) -> None:
    """Every file (the bytecode was written by py_compile) and directory on disk: after a crash,
    a listed file has its content, or its size differs and the entry is rebuilt."""
    for path, st in walk(top):
        flags = os.O_RDONLY | (os.O_DIRECTORY if stat.S_ISDIR(st.st_mode) else 0)
        fd = os.open(os.path.join(top, path), flags | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    sync_dir(top)


def sync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def set_aside(base: str, name: str) -> bool:
    """Rename the entry `name` out of the way and remove it, unless a running process uses it
    (holds its manifest's lock). True if it is gone."""
    import shutil
    import tempfile

    entry = os.path.join(base, name)
    try:
        fd: Optional[int] = os.open(os.path.join(entry, MANIFEST), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        fd = None  # no manifest: nobody runs from it
    aside = tempfile.mkdtemp(prefix=f".old-{name}-", dir=base)
    try:
        if fd is not None:
            lock(fd, fcntl.LOCK_EX)
        os.rename(entry, os.path.join(aside, name))
    except OSError as exc:  # in use (the lock is held), or gone already
        return isinstance(exc, FileNotFoundError)
    finally:
        if fd is not None:
            os.close(fd)
        shutil.rmtree(aside, ignore_errors=True)
    return True


def prune(base: str, digest: str) -> None:
    """Remove the entries of other pyz files (not in use) and what killed starts left."""
    import shutil

    for name in os.listdir(base):
        path = os.path.join(base, name)
        if LEFTOVER_NAME.match(name):
            try:
                old = time.time() - os.lstat(path).st_mtime > STALE_SECONDS
            except OSError:
                continue
            if old:  # a killed start's: a live one may still be writing or removing it
                shutil.rmtree(path, ignore_errors=True)
        elif ENTRY_NAME.match(name) and not name.startswith(digest + "."):
            set_aside(base, name)
