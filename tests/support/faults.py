"""The fault matrix's machinery: a temporary host, the session tally, and the fault servers.

Every case runs the real CLI (`python -m sqlite_provision`, through the tests' launcher
support/launch.py, which gives it the host's places) against a `FaultHost`: a temporary root
holding the prefix root, the profile dir, the systemd dir, the ld.so.conf dir, the download
cache, the log dir and TMPDIR. `FaultHost.fault(name)` snapshots the watched trees before the
fault is injected and after the run, and records the case in `TALLY`:

- injected: the fault was injected (counted when the `with` block starts);
- host-unchanged: the watched trees are equal before and after, except for the additions a
  failed run may leave: the log (not watched), a failed build dir the run was told to keep
  (`--keep-failed`), and a complete download in the cache whose content matches a checksum
  the run was given (a verified tarball, never a partial or unverified one).

For the cases that must succeed (HTTP 500s then 200; a trusted TLS mirror; a proxy), the host
is already installed and the run must change nothing at all, or (the seed install) exactly
the files of the requested install and nothing else.
"""

# Optional/List rather than `X | None`: the tests run on Python 3.7 too.

from __future__ import annotations

import datetime
import grp
import hashlib
import http.client
import http.server
import io
import os
import pwd
import selectors
import shutil
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Type
from urllib.parse import urlsplit

from support import need_tool, unavailable
from support.clirun import PYTHON, Run, pyz_cache, run_cli, tool_env
from support.mirror import Mirror
from support.rhel import RHEL9_OS_RELEASE, mirror_system_path
from support.snapshot import Entry, diff, snapshot

SUPPORT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SUPPORT_DIR.parent.parent

TARBALL_3442 = "sqlite-autoconf-3440200.tar.gz"
PATH_3442 = "/2023/" + TARBALL_3442
TARBALL_3520 = "sqlite-autoconf-3520000.tar.gz"
PATH_3520 = "/2026/" + TARBALL_3520
RELEASE_PATHS = {"3.44.2": PATH_3442, "3.52.0": PATH_3520}

# Inherited network settings would change what a case tests: each case sets its own.
NETWORK_VARS = (
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR",
)  # fmt: skip


# --- the session tally -----------------------------------------------------------------------


@dataclass
class Tally:
    injected: List[str] = field(default_factory=list)
    unchanged: List[str] = field(default_factory=list)

    def line(self) -> str:
        return f"faults: {len(self.injected)} injected, {len(self.unchanged)} host-unchanged"

    def differing(self) -> List[str]:
        left = list(self.unchanged)
        missing = []
        for name in self.injected:
            if name in left:
                left.remove(name)
            else:
                missing.append(name)
        return missing


TALLY = Tally()


@dataclass
class Crashes:
    """The crash matrix's tally: each kill, and each that the next run finished."""

    injected: List[str] = field(default_factory=list)
    converged: List[str] = field(default_factory=list)

    def line(self) -> str:
        return f"crashes: {len(self.injected)} injected, {len(self.converged)} converged"


CRASHES = Crashes()


# --- skipping, or failing under CI -----------------------------------------------------------


def need_root() -> None:
    """Root, for the cases that mount, chown or switch users: skipped elsewhere, but under CI
    (which runs as root: .ci/run checks) a missing root fails, so no case hides."""
    if os.geteuid() != 0:
        unavailable("needs root (mounts, another user)")


# --- running the CLI -------------------------------------------------------------------------


def expect(run: Run, code: int, *phrases: str, fix: bool = True) -> None:
    """The exit code of the README's table, and stderr naming the problem and the fix."""
    assert run.proc.returncode == code, run.describe()
    err = run.proc.stderr
    assert "Traceback" not in err, run.describe()
    assert "internal error" not in err, run.describe()
    for phrase in phrases:
        assert phrase.lower() in err.lower(), f"{phrase!r} is not on stderr:\n{run.describe()}"
    if fix:
        assert "fix:" in err, f"no fix on stderr:\n{run.describe()}"


def log_tail_block(stderr: str) -> List[str]:
    """The lines report_error prints between '--- last lines of the log ---' and 'full log:'."""
    lines = stderr.splitlines()
    try:
        start = lines.index("--- last lines of the log ---") + 1
    except ValueError:
        return []
    end = start
    while end < len(lines) and not lines[end].startswith("full log: "):
        end += 1
    return lines[start:end]


def message_fix_and_log_only(stderr: str) -> Path:
    """A failure that no command's output explains: stderr ends with the error, its fix and the
    log's path, and prints no line of the log (no probe script's source, no exception chain).
    Returns the log, which has the details."""
    lines = stderr.splitlines()
    starts = [n for n, line in enumerate(lines) if line.startswith("error: ")]
    assert len(starts) == 1, stderr
    block = lines[starts[0] :]
    assert [line.split(": ", 1)[0] for line in block] == ["error", "  fix", "full log"], stderr
    assert "--- last lines of the log ---" not in stderr and log_tail_block(stderr) == []
    log = full_log_path(stderr)
    assert log is not None and log.is_file(), stderr
    logged = set(log.read_text().splitlines())
    assert [line for line in lines if line.strip() and line in logged] == [], stderr
    for needle in ("Traceback", " <- ", "sys.stdout.write", "import "):
        assert needle not in stderr, f"{needle!r} on stderr:\n{stderr}"
    return log


def full_log_path(stderr: str) -> Optional[Path]:
    for line in stderr.splitlines():
        if line.startswith("full log: "):
            return Path(line[len("full log: ") :].strip())
    return None


def kept_dirs(stderr: str) -> List[Path]:
    marker = "--keep-failed: kept "
    return [
        Path(line.split(marker, 1)[1].split(" for debugging", 1)[0])
        for line in stderr.splitlines()
        if marker in line
    ]


# --- the host --------------------------------------------------------------------------------

# The tool's real default paths on this machine, watched in every case besides the host's own.
REAL_DEFAULTS = [
    Path("/etc/profile.d"), Path("/etc/systemd/system"), Path("/etc/ld.so.conf.d"),
    Path("/etc/ld.so.cache"), Path("/opt/sqlite"), Path("/var/cache/sqlite-provision"),
    Path("/var/log/sqlite-provision"), Path("/run/sqlite-provision.lock"),
]  # fmt: skip


def _under(path: str, root: Path) -> bool:
    top = str(root).rstrip("/")
    return path == top or path.startswith(top + "/")


def _added(old: object) -> bool:
    return old is None or (isinstance(old, tuple) and old[0] == "absent")


def unexpected_changes(
    before: Dict[str, Entry],
    after: Dict[str, Entry],
    cache: Path,
    verified: Sequence[str] = (),
    kept: Sequence[Path] = (),
    logs: Optional[Path] = None,
    lock: Optional[Path] = None,
) -> Dict[str, Tuple[object, object]]:
    """diff(before, after) minus the allowed additions (see the module docstring): a kept
    build directory, a verified download, a new log file (and the log directory), and the
    lock file (which holds the pid of its last holder)."""
    left: Dict[str, Tuple[object, object]] = {}
    for path, (old, new) in diff(before, after).items():
        if old is None and any(_under(path, k) for k in kept):
            continue
        if logs is not None and _added(old) and isinstance(new, tuple):
            if (path == str(logs) and new[0] == "dir") or (
                os.path.dirname(path) == str(logs) and new[0] == "file"
            ):
                continue
        if lock is not None and path == str(lock) and isinstance(new, tuple) and new[0] == "file":
            continue
        if (
            old is None
            and isinstance(new, tuple)
            and new[0] == "file"
            and os.path.dirname(path) == str(cache)
            and not os.path.basename(path).startswith(".")
            and new[2] in verified
        ):
            continue  # a complete download, verified against a checksum the run was given
        left[path] = (old, new)
    return left


class Case:
    """One injected fault: snapshot before, snapshot after, tally."""

    def __init__(
        self,
        name: str,
        watched: Sequence[Path],
        cache: Path,
        verified: Sequence[str] = (),
        logs: Optional[Path] = None,
        lock: Optional[Path] = None,
    ) -> None:
        self.name = name
        self.watched = list(watched)
        self.cache = cache
        self.verified = list(verified)
        self.logs = logs
        self.lock = lock
        self.kept: List[Path] = []
        self.changes: Dict[str, Tuple[object, object]] = {}
        self.before: Dict[str, Entry] = {}

    def __enter__(self) -> Case:
        self.before = snapshot(self.watched)
        TALLY.injected.append(self.name)
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        after = snapshot(self.watched)
        self.changes = unexpected_changes(
            self.before, after, self.cache, self.verified, self.kept, self.logs, self.lock
        )
        if not self.changes:
            TALLY.unchanged.append(self.name)

    def describe(self) -> str:
        return "host changed:\n" + "\n".join(
            f"  {path}: {old} -> {new}" for path, (old, new) in self.changes.items()
        )


class FaultHost:
    """A temporary root laid out like a host: /opt/sqlite, /etc/profile.d, /etc/systemd/system,
    /etc/ld.so.conf.d, /var/cache, /var/log, /run and /tmp, each under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix_root = root / "opt" / "sqlite"
        self.profile_dir = root / "etc" / "profile.d"
        self.profile = self.profile_dir / "sqlite-provision.sh"
        self.csh = self.profile_dir / "sqlite-provision.csh"
        self.systemd = root / "etc" / "systemd" / "system"
        self.ld_so_conf = root / "etc" / "ld.so.conf.d"
        self.cache = root / "var" / "cache" / "sqlite-provision"
        self.log = root / "var" / "log" / "sqlite-provision"
        self.lock = root / "run" / "sqlite-provision.lock"
        self.tmp = root / "tmp"
        self.home = root / "home"  # the tool's HOME: a run must leave it alone too
        for directory in (
            root / "opt", self.profile_dir, self.systemd, self.ld_so_conf, self.cache,
            self.lock.parent, self.tmp, self.home,
        ):  # fmt: skip
            directory.mkdir(parents=True, exist_ok=True)
        # The smoke test runs `rpm -qa`, whose database on Debian is ~/.rpmdb: here it lives
        # where RHEL keeps it, /var/lib/rpm (not watched: a query touches its -shm file there
        # too), so that HOME is a place no run may write.
        macros = self.home / ".rpmmacros"
        if not macros.exists():
            macros.write_text(f"%_dbpath {root / 'var' / 'lib' / 'rpm'}\n")
        # Files of other packages, which no run may touch.
        other = self.profile_dir / "other-package.sh"
        if not other.exists():
            other.write_text("export OTHER_PACKAGE=1\n")
            (self.systemd / "other.service").write_text("[Service]\nExecStart=/bin/true\n")

    @property
    def current(self) -> Path:
        return self.prefix_root / "current"

    def trees(self) -> List[Path]:
        """Where a run leaves its results: the state a crash-matrix run converges to."""
        return [
            self.prefix_root, self.profile_dir, self.systemd, self.ld_so_conf, self.cache,
            self.tmp,
        ]  # fmt: skip

    def watched(self) -> List[Path]:
        """What a failed run must leave as it was: its trees, the prefix root's parent, run/,
        the log directory, HOME, and the real default paths of this machine (a run that
        ignored an override would write there and still look clean here otherwise)."""
        return [
            *self.trees(), self.prefix_root.parent, self.lock.parent, self.log, self.home,
            *REAL_DEFAULTS,
        ]  # fmt: skip

    def snapshot(self) -> Dict[str, Entry]:
        return snapshot(self.watched())

    def env(self, **extra: str) -> Dict[str, str]:
        env = tool_env(self.root / "state")
        for name in NETWORK_VARS:
            env.pop(name, None)
        env.pop("CC", None)
        env.update(
            SQLITE_PROVISION_CACHE_DIR=str(self.cache),
            SQLITE_PROVISION_PYZ_CACHE=pyz_cache(),  # the launcher's, not the host's state
            SQLITE_PROVISION_LOG_DIR=str(self.log),
            SQLITE_PROVISION_LOCK_FILE=str(self.lock),
            SQLITE_PROVISION_TEST_SYSTEMD_DIR=str(self.systemd),
            SQLITE_PROVISION_TEST_LD_SO_CONF_DIR=str(self.ld_so_conf),
            TMPDIR=str(self.tmp),
            HOME=str(self.home),
        )
        env.update(extra)
        return env

    def args(self, *extra: str, python: str = PYTHON) -> List[str]:
        return [
            "install", "--prefix-root", str(self.prefix_root), "--profile-file",
            str(self.profile), "--python", python, "--json", *extra,
        ]  # fmt: skip

    def fault(self, name: str, verified: Sequence[str] = ()) -> Case:
        return Case(name, self.watched(), self.cache, verified, self.log, self.lock)

    def run(
        self,
        *extra: str,
        python: str = PYTHON,
        env: Optional[Dict[str, str]] = None,
        **kw: Any,
    ) -> Run:
        return run_cli(
            self.args(*extra, python=python), env if env is not None else self.env(), **kw
        )

    def cache_files(self) -> List[str]:
        return sorted(p.name for p in self.cache.iterdir()) if self.cache.is_dir() else []


def copy_host(source: FaultHost, root: Path) -> FaultHost:
    """A copy of an installed host (links kept as links), to fault without touching the source."""
    shutil.copytree(str(source.root), str(root), symlinks=True)
    return FaultHost(root)


# --- the release on a mirror -----------------------------------------------------------------


def serve_release(mirror: Mirror, tarballs: Dict[str, Any], version: str = "3.44.2") -> str:
    """The tarball at its sqlite.org path and a download page naming it; returns its path."""
    info = tarballs[version]
    path = RELEASE_PATHS[version]
    mirror.add_file(path, Path(info["path"]))
    mirror.add_download_page(
        [(version, path.lstrip("/"), Path(info["path"]).stat().st_size, info["sha3_256"])]
    )
    return path


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- TLS -------------------------------------------------------------------------------------


@dataclass
class Tls:
    ca: Path  # the CA certificate (PEM): what SSL_CERT_FILE / REQUESTS_CA_BUNDLE point at
    cert: Path  # the server's certificate for 127.0.0.1, signed by the CA
    key: Path


def make_tls(directory: Path) -> Tls:
    """A throw-away CA and a server certificate for 127.0.0.1: with `cryptography` if it is
    installed, else with the openssl command."""
    directory.mkdir(parents=True, exist_ok=True)
    tls = Tls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    try:
        import cryptography  # noqa: F401
    except ImportError:
        _make_tls_openssl(tls, directory)
    else:
        _make_tls_cryptography(tls)
    return tls


def _make_tls_cryptography(tls: Tls) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sqlite-provision fault CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _make_tls_openssl(tls: Tls, directory: Path) -> None:
    openssl = need_tool("openssl")
    ca_key, csr, ext = directory / "ca.key", directory / "server.csr", directory / "ext.cnf"
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "extendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\n"
    )
    for argv in (
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(ca_key), "-out", str(tls.ca), "-days", "1",
         "-subj", "/CN=sqlite-provision fault CA",
         "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"],
        [openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(tls.key), "-out", str(csr), "-subj", "/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(tls.ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(tls.cert), "-days", "1", "-extfile", str(ext)],
    ):  # fmt: skip
        subprocess.run(argv, capture_output=True, check=True)


class TlsMirror(Mirror):
    """The loopback mirror behind TLS with a certificate no system bundle trusts."""

    def __init__(self, tls: Tls) -> None:
        super().__init__()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls.cert), str(tls.key))
        # The handshake happens in each handler thread, on the first read: a client that
        # refuses the certificate cannot stall the accept loop.
        self._server.socket = context.wrap_socket(
            self._server.socket, server_side=True, do_handshake_on_connect=False
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


# --- a forwarding proxy that counts ----------------------------------------------------------

_HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailers", "transfer-encoding", "upgrade", "proxy-connection", "content-length",
    }
)  # fmt: skip


class _ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    proxy: CountingProxy

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.proxy._record(f"GET {self.path}")
        parts = urlsplit(self.path)
        if parts.scheme != "http" or not parts.hostname:
            self.send_error(400, "absolute http:// URL expected")
            return
        upstream = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            upstream.request("GET", target or "/", headers=headers)
            response = upstream.getresponse()
            body = response.read()
        finally:
            upstream.close()
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_CONNECT(self) -> None:
        self.server.proxy._record(f"CONNECT {self.path}")
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=30)
        except (OSError, ValueError):
            self.send_error(502)
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        with upstream:
            _relay(self.connection, upstream)


def _relay(a: socket.socket, b: socket.socket) -> None:
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        while True:
            for key, _ in selector.select(timeout=30):
                source = key.fileobj
                assert isinstance(source, socket.socket)
                try:
                    data = source.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                key.data.sendall(data)


class CountingProxy:
    """An HTTP proxy on 127.0.0.1: forwards GET http://... and tunnels CONNECT, counting both."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: List[str] = []
        self._server = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
        self._server.proxy = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _record(self, line: str) -> None:
        with self._lock:
            self.requests.append(line)

    def count(self, needle: str = "") -> int:
        with self._lock:
            return sum(1 for line in self.requests if needle in line)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- hostile tarballs ------------------------------------------------------------------------


def tarball_bytes(members: Sequence[Tuple[tarfile.TarInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return out.getvalue()


def tar_file(name: str, data: bytes) -> Tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    return info, data


def tar_dir(name: str) -> Tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, b""


def tar_symlink(name: str, target: str) -> Tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info, b""


# --- a RHEL look-alike without a compiler ----------------------------------------------------


class FakeRhel:
    """An OS root with RHEL 9's os-release (SQLITE_PROVISION_TEST_OS_ROOT, support/launch.py), a PATH mirroring the system
    directories without gcc, cc, make (and rpm, dnf, yum), and a fake `yum` first on PATH."""

    def __init__(self, base: Path, yum_body: str) -> None:
        self.os_root = base / "osroot"
        (self.os_root / "etc").mkdir(parents=True)
        (self.os_root / "etc" / "os-release").write_text(RHEL9_OS_RELEASE)
        self.bin = base / "bin"
        mirror_system_path(self.bin)
        self.yum_bin = base / "yum-bin"
        self.yum_bin.mkdir()
        self.calls = base / "yum-calls.txt"
        yum = self.yum_bin / "yum"
        yum.write_text(
            "#!/bin/sh\n"
            f"echo \"$*\" >> '{self.calls}'\n"
            'if [ "$*" = --version ]; then echo 4.14.0; exit 0; fi\n' + yum_body + "\n"
        )
        yum.chmod(0o755)

    def env(self, host: FaultHost) -> Dict[str, str]:
        return host.env(
            PATH=f"{self.yum_bin}{os.pathsep}{self.bin}",
            SQLITE_PROVISION_TEST_OS_ROOT=str(self.os_root),
        )

    def yum_calls(self) -> List[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


# --- mounts ----------------------------------------------------------------------------------


@contextmanager
def mounted(argv: Sequence[str], target: Path) -> Iterator[None]:
    """Run a mount command for `target`; always unmount it afterwards."""
    need_root()
    need_tool("mount")
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        unavailable(f"cannot mount ({' '.join(argv)}): {proc.stderr.strip()}")
    try:
        yield
    finally:
        done = subprocess.run(["umount", str(target)], capture_output=True, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


def tmpfs(target: Path, size: str = "2m", options: str = "") -> Any:
    opts = f"size={size},mode=0755" + (f",{options}" if options else "")
    return mounted(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(target)], target)


@contextmanager
def read_only(target: Path) -> Iterator[None]:
    """`target` bind-mounted read-only onto itself."""
    with mounted(["mount", "--bind", str(target), str(target)], target):
        proc = subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(target)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            unavailable(f"cannot remount {target} read-only: {proc.stderr.strip()}")
        yield


# --- another user ----------------------------------------------------------------------------

_TOOL_PACKAGES = (
    "click", "requests", "urllib3", "idna", "charset_normalizer", "certifi", "distro",
    "jinja2", "markupsafe",
)  # fmt: skip


def unprivileged_command(base: Path) -> Tuple[List[str], str, Dict[str, str]]:
    """(argv prefix, python, env additions) to run the CLI as `nobody`.

    This interpreter may live where `nobody` cannot reach (pyenv under /root): then the CLI runs
    on the system python of the same minor version. Either way the tool's dependencies and the
    package itself (laid out as the wheel installs it) are copied into a world-readable
    directory, since a checkout's files may be unreadable to others.
    """
    import importlib.util

    need_root()
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        unavailable("there is no user nobody")
    group = next((g for g in ("nogroup", "nobody") if _group_exists(g)), None)
    if group is None:
        unavailable("there is no group nogroup or nobody")
    minor = "python{}.{}".format(*sys.version_info[:2])
    candidates = (sys.executable, f"/usr/bin/{minor}", f"/usr/local/bin/{minor}")
    python = next((p for p in candidates if _others_can_run(p)), None)
    if python is None:
        unavailable(f"no system {minor} that nobody can run")
    deps = base / "deps"
    deps.mkdir(parents=True)
    for name in _TOOL_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            unavailable(f"{name} is not importable here")
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            shutil.copytree(str(origin.parent), str(deps / name), ignore=_NO_CACHE)
        else:
            shutil.copy2(str(origin), str(deps / origin.name))
    # The checkout's package itself (its templates inside): a checkout's files may be
    # unreadable to others (a umask 077 clone).
    shutil.copytree(
        str(REPO_ROOT / "src" / "sqlite_provision"), str(deps / "sqlite_provision"),
        ignore=_NO_CACHE,
    )  # fmt: skip
    for path in [base, *base.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    setpriv = shutil.which("setpriv")
    if setpriv:
        prefix = [setpriv, "--reuid=nobody", f"--regid={group}", "--clear-groups"]
    else:
        prefix = [need_tool("runuser"), "-u", "nobody", "-g", group, "--"]
    env = {"PYTHONPATH": str(deps), "PYTHONDONTWRITEBYTECODE": "1"}
    return [*prefix, str(python), "-m", "sqlite_provision"], str(python), env


_NO_CACHE = shutil.ignore_patterns("__pycache__")


def _others_can_run(path: str) -> bool:
    """Any user can run `path`: it and every directory above it are executable by others."""
    real = Path(os.path.realpath(path))
    if not real.is_file():
        return False
    return all(os.stat(str(p)).st_mode & 0o001 for p in [real, *real.parents])


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def world_dir(prefix: str) -> Path:
    """A directory in the system's temporary directory that every user can reach (pytest's
    tmp_path is 0700 and root's)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


# --- processes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    cmdline: str
    cwd: str


def processes() -> List[Proc]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = (
                Path(f"/proc/{pid}/cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode("utf-8", "replace")
            )
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if fields and fields[0] == "Z":
            continue  # a zombie runs nothing (and its parent is about to reap it)
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            cwd = ""
        found.append(Proc(pid, int(fields[1]), int(fields[2]), cmdline.strip(), cwd))
    return found


def running_in(directory: Path) -> List[Proc]:
    """Processes working in, or naming, `directory` (a build dir's make and compilers)."""
    root = str(directory)
    return [
        p
        for p in processes()
        if p.pid != os.getpid() and (_under(p.cwd, directory) or root + "/" in p.cmdline)
    ]


# --- the seed: the fault matrix's one full build --------------------------------------------


def default_attempts() -> int:
    """The number of HTTP attempts the tool makes by default (its FetchPolicy's)."""
    from sqlite_provision.config import FetchPolicy

    return FetchPolicy().attempts


@dataclass
class Seed:
    """The session's one full build: 3.44.2 installed from a mirror that answers the tarball's
    first requests with 500, with the default options plus a systemd drop-in, under umask 077."""

    host: FaultHost
    mirror: Mirror
    run: Run
    before: Dict[str, Entry]
    after: Dict[str, Entry]
    failures: int  # the 500s served before the 200

    def copy(self, root: Path, *extra: str) -> FaultHost:
        """A copy of the installed host, re-installed in place (no build: the prefix's manifest
        matches) so that its snippet and drop-in name the copy's own paths."""
        copied = copy_host(self.host, root)
        run = run_cli(
            copied.args("--version", "3.44.2", "--mirror", self.mirror.url,
                        "--systemd-unit", "myapp", *extra),
            copied.env(),
        )  # fmt: skip
        expect(run, 0, fix=False)
        assert run.step("make")["status"] == "skipped", run.describe()
        return copied
