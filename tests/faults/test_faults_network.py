"""Network faults: a changed byte, a short body, 404, 500s, a hung server, TLS and proxies.

Failing cases run against a fresh host and a fresh mirror with one fault; they must exit 4
before anything is built, with an empty cache. The cases that must succeed run on the seed
host (3.44.2 installed): `--version latest` reads the download page through the faulty path
(TLS, a proxy), finds the same build installed, and must change nothing at all. The seed install
itself is the "500s then 200" case, on the tarball.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from support.faults import (
    PATH_3442,
    TALLY,
    TARBALL_3442,
    CountingProxy,
    FaultHost,
    Seed,
    Tls,
    TlsMirror,
    expect,
    full_log_path,
    make_tls,
    message_fix_and_log_only,
    serve_release,
    tmpfs,
    unexpected_changes,
)
from support.mirror import Mirror

pytestmark = pytest.mark.integration


# --- the seed: HTTP 500s, then 200 -----------------------------------------------------------


def unintended_changes(seed: Seed, tarball_sha256: str) -> Dict[str, Any]:
    """What the seed install changed beyond the files a successful install adds: nothing may
    be modified or removed, and nothing added but the prefix, `current`, the snippet and its
    csh twin, the drop-in, the activation record and the verified tarball in the cache."""
    host = seed.host
    prefix = host.prefix_root / "3.44.2"
    expected = {
        str(host.prefix_root),
        str(host.current),
        str(host.prefix_root / ".sqlite-provision-activation.json"),
        str(host.profile),
        str(host.csh),
        str(host.systemd / "myapp.service.d"),
        str(host.systemd / "myapp.service.d" / "sqlite-provision.conf"),
    }
    left = unexpected_changes(
        seed.before, seed.after, host.cache, [tarball_sha256], logs=host.log, lock=host.lock
    )
    unintended = {}
    for path, (old, new) in left.items():
        added = old is None or (isinstance(old, tuple) and old[0] == "absent")
        if added and (path in expected or path.startswith(f"{prefix}/") or path == str(prefix)):
            continue
        unintended[path] = (old, new)
    # ... and what the install must have written is there: an install that wrote nothing
    # changed nothing unintended either.
    library = prefix / "lib" / "libsqlite3.so.0"
    for path in sorted(expected | {str(prefix), str(library)}):
        entry = seed.after.get(path)
        if not entry or entry[0] == "absent":
            unintended[path] = ("expected", "missing")
    return unintended


def test_http_500s_then_200_succeeds(seed: Seed, shared_tarballs: Dict[str, Any]) -> None:
    """The tool makes 4 attempts by default: 3 x 500, then 200, must succeed (the issue's case)."""
    assert seed.failures == 3
    name = f"HTTP 500 x{seed.failures} then 200 (must succeed)"
    TALLY.injected.append(name)
    unexpected = unintended_changes(seed, shared_tarballs["3.44.2"]["sha256"])
    if not unexpected:
        TALLY.unchanged.append(name)  # nothing beyond the install that was asked for

    expect(seed.run, 0, fix=False)
    data = seed.run.data
    log = Path(data["log_file"]).read_text()
    assert log.count("HTTP 500") == seed.failures and "retrying" in log, log
    assert data["changed"] is True
    assert data["verified"][0]["sqlite_version"] == "3.44.2"
    assert seed.run.step("fetch")["status"] == "ok"
    assert seed.mirror.count(PATH_3442) >= seed.failures + 1
    assert os.readlink(str(seed.host.current)) == "3.44.2"
    assert seed.host.cache_files() == [TARBALL_3442]
    assert unexpected == {}, unexpected


# --- failures on the tarball: exit 4, nothing cached -----------------------------------------


def pinned(mirror_url: str, *extra: str) -> List[str]:
    return ["--version", "3.44.2", "--mirror", mirror_url, *extra]


def test_checksum_mismatch(
    host: FaultHost, mirror: Mirror, shared_tarballs: Dict[str, Any]
) -> None:
    data = bytearray(Path(shared_tarballs["3.44.2"]["path"]).read_bytes())
    data[len(data) // 2] ^= 0x01
    mirror.add(PATH_3442, bytes(data))
    with host.fault("checksum mismatch (one byte changed)") as case:
        run = host.run(*pinned(mirror.url))
    expect(run, 4, "checksum mismatch", TARBALL_3442, "--sha3-256")
    assert run.data["exit_code"] == 4
    assert mirror.count(PATH_3442) == 1  # a mismatch is final, not retried
    assert host.cache_files() == []
    assert case.changes == {}, case.describe()


def test_truncated_download_is_retried_then_exit_4(
    host: FaultHost, mirror: Mirror, shared_tarballs: Dict[str, Any]
) -> None:
    from support.faults import default_attempts

    attempts = default_attempts()
    serve_release(mirror, shared_tarballs)
    mirror.truncate(PATH_3442, 200_000, times=attempts)
    with host.fault("truncated download") as case:
        run = host.run(*pinned(mirror.url))
    expect(run, 4, f"after {attempts} attempts", "HTTPS_PROXY")
    assert "retrying" in message_fix_and_log_only(run.proc.stderr).read_text()  # the log tells
    assert mirror.count(PATH_3442) == attempts
    assert host.cache_files() == []  # no .part file left
    assert case.changes == {}, case.describe()


def test_no_dns_is_said_in_words_with_the_air_gapped_way_out(host: FaultHost) -> None:
    """A name that cannot resolve (the .invalid domain never does): the message says so in
    words, not with requests' exception chain, and the fix names --tarball FILE beside --mirror
    and the proxy variables. The log keeps the whole chain."""
    url = "http://sqlite-provision-test.invalid"
    with host.fault("no DNS for the mirror") as case:
        run = host.run(*pinned(url))
    expect(run, 4, "cannot resolve sqlite-provision-test.invalid: no DNS or no network",
           "--tarball FILE", "--mirror", "HTTPS_PROXY")  # fmt: skip
    error_lines = [
        line for line in run.proc.stderr.splitlines() if line.startswith(("error:", "  fix:"))
    ]
    assert not any("ConnectionPool" in line or "NameResolution" in line for line in error_lines)
    log = full_log_path(run.proc.stderr)
    assert log is not None and "ConnectionError" in log.read_text()
    assert host.cache_files() == []
    assert case.changes == {}, case.describe()


def test_http_404(host: FaultHost, mirror: Mirror) -> None:
    """No command's output explains a download's failure: the message, the fix and the log's
    path, and not the log's last lines (a probe script's source, the exception chains)."""
    with host.fault("HTTP 404") as case:
        run = host.run(*pinned(mirror.url))
    expect(run, 4, "HTTP 404", "not found", PATH_3442, "--mirror")
    log = message_fix_and_log_only(run.proc.stderr)
    assert "404" in log.read_text()
    assert mirror.count(PATH_3442) == 1
    assert host.cache_files() == []
    assert case.changes == {}, case.describe()


def test_a_port_where_nothing_listens(host: FaultHost) -> None:
    """Connection refused on each attempt: the message in words, the fix and the log's path on
    stderr; the exception chains of the retries and the probes before them only in the log."""
    import socket

    with socket.socket() as probe:  # a loopback port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with host.fault("nothing listens on the mirror's port") as case:
        run = host.run(*pinned(url))
    expect(run, 4, "refused the connection", "--mirror", "--tarball FILE")
    log = message_fix_and_log_only(run.proc.stderr)
    logged = log.read_text()
    assert "ConnectionRefusedError" in logged and "sys.stdout.write" in logged  # kept there
    assert run.data["log_file"] == str(log)
    assert host.cache_files() == []
    assert case.changes == {}, case.describe()


def test_hung_server_is_bounded(
    host: FaultHost, mirror: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server that accepts and never answers. The default FetchPolicy bounds it at attempts x
    the read timeout plus the backoff (printed below); the case runs with a 1 s read timeout (a
    FetchPolicy the tests' launcher gives the tool), the rest of the policy as shipped."""
    from sqlite_provision.config import FetchPolicy

    policy = FetchPolicy()
    attempts, backoff, read = policy.attempts, policy.backoff, policy.read_timeout
    waits = sum(backoff * 2 ** (n - 1) for n in range(1, attempts))
    bound = attempts * read + waits
    with capsys.disabled():
        print(
            f"\nhung server: with the defaults ({attempts} attempts, read timeout {read:.0f}s, "
            f"backoff {backoff}s) a tarball download gives up after ~{bound:.1f}s"
        )
    assert bound < 600  # bounded: unattended runs must end

    mirror.hang(PATH_3442)
    short = host.env(SQLITE_PROVISION_TEST_FETCH="connect_timeout=2,read_timeout=1")
    with host.fault("server accepts but never answers") as case:
        run = host.run(*pinned(mirror.url), env=short, timeout=120)
    expect(run, 4, "timed out", f"after {attempts} attempts", "HTTPS_PROXY")
    assert mirror.count(PATH_3442) == attempts
    assert run.seconds < attempts * 1 + waits + 30, run.seconds
    assert host.cache_files() == []
    assert case.changes == {}, case.describe()


def test_full_cache_disk(host: FaultHost, mirror: Mirror, shared_tarballs: Dict[str, Any]) -> None:
    """The cache on a 2 MB tmpfs: the 3 MB tarball cannot be written. The cache keeps no .part
    file; exit 4 (the download failed), naming free space."""
    serve_release(mirror, shared_tarballs)
    with tmpfs(host.cache, "2m"):
        with host.fault("full disk under the download cache") as case:
            run = host.run(*pinned(mirror.url))
        assert host.cache_files() == []
    expect(run, 4, "No space left on device", str(host.cache), "free space")
    assert case.changes == {}, case.describe()


# --- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_mirror(tls: Tls, shared_tarballs: Dict[str, Any]) -> Iterator[TlsMirror]:
    with TlsMirror(tls) as served:
        serve_release(served, shared_tarballs)
        yield served


def test_tls_self_signed_mirror_is_refused_by_default(
    host: FaultHost, tls_mirror: TlsMirror
) -> None:
    with host.fault("TLS: self-signed mirror, no CA given") as case:
        run = host.run(*pinned(tls_mirror.url))
    expect(run, 4, "TLS verification failed", "certificate verify failed", "SSL_CERT_FILE")
    assert "REQUESTS_CA_BUNDLE" in run.proc.stderr
    assert tls_mirror.count(PATH_3442) == 0  # the handshake failed: no request was made
    assert host.cache_files() == []
    assert case.changes == {}, case.describe()


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_tls_mirror_is_accepted_with_its_ca(
    seed: Seed, tls: Tls, tls_mirror: TlsMirror, variable: str
) -> None:
    host = seed.host
    env = host.env(**{variable: str(tls.ca)})
    with host.fault(f"TLS: self-signed mirror, {variable} names its CA") as case:
        run = host.run("--version", "latest", "--mirror", tls_mirror.url, env=env)
    expect(run, 0, fix=False)
    assert run.data["changed"] is False
    assert run.step("resolve")["status"] == "ok"
    assert tls_mirror.url in run.step("resolve")["detail"]
    assert tls_mirror.count("/download.html") == 1
    assert case.changes == {}, case.describe()


# --- proxies ---------------------------------------------------------------------------------


@pytest.fixture
def proxy() -> Iterator[CountingProxy]:
    with CountingProxy() as running:
        yield running


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_carries_the_request(
    seed: Seed,
    proxy: CountingProxy,
    mirror: Mirror,
    tls: Tls,
    tls_mirror: TlsMirror,
    shared_tarballs: Dict[str, Any],
    scheme: str,
) -> None:
    """HTTP_PROXY for an http:// mirror (the proxy forwards the GET), HTTPS_PROXY for an
    https:// one (the proxy tunnels a CONNECT; the CA comes from SSL_CERT_FILE)."""
    host = seed.host
    if scheme == "http":
        serve_release(mirror, shared_tarballs)
        target: Mirror = mirror
        env = host.env(HTTP_PROXY=proxy.url)
    else:
        target = tls_mirror
        env = host.env(HTTPS_PROXY=proxy.url, SSL_CERT_FILE=str(tls.ca))
    with host.fault(f"{scheme.upper()}_PROXY set: through a loopback proxy") as case:
        run = host.run("--version", "latest", "--mirror", target.url, env=env)
    expect(run, 0, fix=False)
    assert run.data["changed"] is False
    assert target.count("/download.html") == 1
    if scheme == "http":
        assert proxy.count(f"GET {target.url}/download.html") == 1, proxy.requests
    else:
        assert proxy.count(f"CONNECT 127.0.0.1:{target.port}") == 1, proxy.requests
    assert case.changes == {}, case.describe()


def test_no_proxy_bypasses_the_proxy(
    seed: Seed, proxy: CountingProxy, mirror: Mirror, shared_tarballs: Dict[str, Any]
) -> None:
    host = seed.host
    serve_release(mirror, shared_tarballs)
    env = host.env(HTTP_PROXY=proxy.url, HTTPS_PROXY=proxy.url, NO_PROXY="127.0.0.1")
    with host.fault("NO_PROXY=127.0.0.1 bypasses the proxy") as case:
        run = host.run("--version", "latest", "--mirror", mirror.url, env=env)
    expect(run, 0, fix=False)
    assert mirror.count("/download.html") == 1
    assert proxy.requests == []
    assert case.changes == {}, case.describe()


def test_a_dead_proxy_is_a_download_error(host: FaultHost, mirror: Mirror) -> None:
    """HTTP_PROXY naming a port where nothing listens: exit 4, naming the proxy variables."""
    with CountingProxy() as stopped:
        dead = stopped.url
    env = host.env(HTTP_PROXY=dead)
    with host.fault("HTTP_PROXY names a dead proxy") as case:
        run = host.run(*pinned(mirror.url), env=env)
    expect(run, 4, "HTTP_PROXY", "NO_PROXY")
    assert mirror.requests == []
    assert host.cache_files() == []
    assert case.changes == {}, case.describe()
