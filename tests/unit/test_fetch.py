"""source/fetch.py against a real loopback HTTP mirror: no mocking of requests."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import socket
import stat
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
import requests

from sqlite_provision.config import FetchPolicy, read_environment
from sqlite_provision.digests import (
    HASH_ALGORITHMS,
    Checksum,
    file_digest,
    parse_checksum,
    verify_file,
)
from sqlite_provision.errors import ChecksumError, DownloadError, UsageError
from sqlite_provision.output import StderrProgress
from sqlite_provision.source.fetch import (
    USER_AGENT,
    RefusedRequest,
    fetch_text,
    fetch_to_cache,
    make_session,
)
from support.mirror import Mirror

TARBALL = "sqlite-autoconf-3440200.tar.gz"
TARBALL_PATH = "/2023/" + TARBALL
PAYLOAD = bytes(range(256)) * 1024  # 256 KiB: several 64 KiB chunks
PAYLOAD_SHA3 = Checksum("sha3_256", hashlib.sha3_256(PAYLOAD).hexdigest())

SharedTarballs = Dict[str, Dict[str, Any]]


def listing(directory: Path) -> List[str]:
    return sorted(os.listdir(str(directory)))


class Log:
    def __init__(self) -> None:
        self.lines: List[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    def __contains__(self, text: object) -> bool:
        return any(str(text) in line for line in self.lines)


# the happy path and the cache


def test_download_verifies_and_then_reuses_the_cache(
    sqlite_mirror: Mirror, shared_tarballs: SharedTarballs, tmp_path: Path
) -> None:
    info = shared_tarballs["3.44.2"]
    checksum = parse_checksum("sha3_256", info["sha3_256"])
    cache = tmp_path / "cache" / "downloads"
    url = sqlite_mirror.url + TARBALL_PATH
    before = sqlite_mirror.count(TARBALL_PATH)

    first = fetch_to_cache(url, cache, TARBALL, checksum)

    assert first.downloaded is True
    assert first.attempts == 1
    assert first.path == cache / TARBALL
    assert first.bytes == info["path"].stat().st_size
    assert first.path.read_bytes() == info["path"].read_bytes()
    assert file_digest(first.path, "sha256") == info["sha256"]
    assert listing(cache) == [TARBALL]
    assert stat.S_IMODE(cache.stat().st_mode) == 0o755
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o644
    assert sqlite_mirror.count(TARBALL_PATH) == before + 1

    log = Log()
    second = fetch_to_cache(url, cache, TARBALL, checksum, log=log)

    assert second.downloaded is False
    assert second.attempts == 0
    assert second.path == first.path
    assert second.bytes == first.bytes
    assert sqlite_mirror.count(TARBALL_PATH) == before + 1  # no network at all
    assert "using cached" in log


def test_sha256_checksum_works_too(
    sqlite_mirror: Mirror, shared_tarballs: SharedTarballs, tmp_path: Path
) -> None:
    info = shared_tarballs["3.52.0"]
    name = info["path"].name
    checksum = parse_checksum("sha256", info["sha256"])

    result = fetch_to_cache(sqlite_mirror.url + "/2026/" + name, tmp_path, name, checksum)

    assert result.downloaded
    assert verify_file(result.path, checksum)
    assert checksum.label == "SHA-256"


def test_a_corrupt_cached_file_is_replaced(mirror: Mirror, tmp_path: Path) -> None:
    url = mirror.add(TARBALL_PATH, PAYLOAD)
    stale = tmp_path / TARBALL
    stale.write_bytes(PAYLOAD[:-1] + b"X")
    log = Log()

    result = fetch_to_cache(url, tmp_path, TARBALL, PAYLOAD_SHA3, log=log)

    assert result.downloaded is True
    assert stale.read_bytes() == PAYLOAD
    assert listing(tmp_path) == [TARBALL]
    assert "deleting it" in log
    assert mirror.count(TARBALL_PATH) == 1


def test_one_changed_byte_is_a_checksum_error_and_leaves_nothing(
    mirror: Mirror, tmp_path: Path
) -> None:
    tampered = bytearray(PAYLOAD)
    tampered[len(tampered) // 2] ^= 0x01
    url = mirror.add(TARBALL_PATH, bytes(tampered))
    cache = tmp_path / "cache"

    with pytest.raises(ChecksumError) as caught:
        fetch_to_cache(url, cache, TARBALL, PAYLOAD_SHA3, policy=FetchPolicy(backoff=0))

    error = caught.value
    assert error.exit_code == 4
    assert error.message == (
        f"checksum mismatch for {TARBALL}: expected SHA3-256 {PAYLOAD_SHA3.hexdigest}, "
        f"got {hashlib.sha3_256(bytes(tampered)).hexdigest()}; the file was deleted"
    )
    assert error.hint is not None and "--sha3-256" in error.hint
    assert listing(cache) == []
    assert mirror.count(TARBALL_PATH) == 1  # a wrong digest is not retried


def test_the_real_tarball_with_one_byte_changed_is_rejected(
    mirror: Mirror, shared_tarballs: SharedTarballs, tmp_path: Path
) -> None:
    info = shared_tarballs["3.44.2"]
    data = bytearray(info["path"].read_bytes())
    data[-1] ^= 0xFF
    url = mirror.add(TARBALL_PATH, bytes(data))

    with pytest.raises(ChecksumError):
        fetch_to_cache(url, tmp_path, TARBALL, parse_checksum("sha3_256", info["sha3_256"]))

    assert listing(tmp_path) == []


# HTTP failures and retries


def test_404_fails_at_once_naming_the_url(mirror: Mirror, tmp_path: Path) -> None:
    url = mirror.url + "/2023/sqlite-autoconf-3999900.tar.gz"

    with pytest.raises(DownloadError) as caught:
        fetch_to_cache(
            url, tmp_path, "x.tar.gz", PAYLOAD_SHA3, policy=FetchPolicy(attempts=3, backoff=0)
        )

    assert not isinstance(caught.value, ChecksumError)
    assert url in caught.value.message
    assert "404" in caught.value.message
    assert caught.value.hint is not None
    assert "--version" in caught.value.hint and "--mirror" in caught.value.hint
    assert mirror.count("/2023/") == 1
    assert listing(tmp_path) == []


def test_other_4xx_fail_at_once(mirror: Mirror, tmp_path: Path) -> None:
    url = mirror.add(TARBALL_PATH, PAYLOAD)
    mirror.fail(TARBALL_PATH, [403])

    with pytest.raises(DownloadError, match="403"):
        fetch_to_cache(url, tmp_path, TARBALL, PAYLOAD_SHA3, policy=FetchPolicy(backoff=0))

    assert mirror.count(TARBALL_PATH) == 1


def test_two_500s_then_success(mirror: Mirror, tmp_path: Path) -> None:
    url = mirror.add(TARBALL_PATH, PAYLOAD)
    mirror.fail(TARBALL_PATH, [500, 500])
    log = Log()

    result = fetch_to_cache(
        url, tmp_path, TARBALL, PAYLOAD_SHA3, log=log, policy=FetchPolicy(backoff=0.01)
    )

    assert result.downloaded
    assert result.attempts == 3
    assert result.bytes == len(PAYLOAD)
    assert mirror.count(TARBALL_PATH) == 3
    assert len([line for line in log.lines if "retrying" in line]) == 2
    assert listing(tmp_path) == [TARBALL]


def test_persistent_5xx_gives_up_after_the_last_attempt(mirror: Mirror, tmp_path: Path) -> None:
    url = mirror.add(TARBALL_PATH, PAYLOAD)
    mirror.fail(TARBALL_PATH, [503, 502, 500, 500])

    with pytest.raises(DownloadError) as caught:
        fetch_to_cache(
            url, tmp_path, TARBALL, PAYLOAD_SHA3, policy=FetchPolicy(attempts=3, backoff=0)
        )

    message = caught.value.message
    assert url in message and "3 attempts" in message and "HTTP 500" in message
    assert mirror.count(TARBALL_PATH) == 3
    assert listing(tmp_path) == []


def test_a_truncated_body_is_retried(mirror: Mirror, tmp_path: Path) -> None:
    url = mirror.add(TARBALL_PATH, PAYLOAD)
    mirror.truncate(TARBALL_PATH, 70000, times=1)

    result = fetch_to_cache(url, tmp_path, TARBALL, PAYLOAD_SHA3, policy=FetchPolicy(backoff=0))

    assert result.attempts == 2
    assert result.path.read_bytes() == PAYLOAD
    assert listing(tmp_path) == [TARBALL]


def test_truncated_every_time_fails_and_leaves_no_part_file(mirror: Mirror, tmp_path: Path) -> None:
    url = mirror.add(TARBALL_PATH, PAYLOAD)
    mirror.truncate(TARBALL_PATH, 1000, times=5)

    with pytest.raises(DownloadError) as caught:
        fetch_to_cache(
            url, tmp_path, TARBALL, PAYLOAD_SHA3, policy=FetchPolicy(attempts=3, backoff=0)
        )

    assert not isinstance(caught.value, ChecksumError)
    assert "3 attempts" in caught.value.message
    assert mirror.count(TARBALL_PATH) == 3
    assert listing(tmp_path) == []


def test_a_hung_server_is_bounded_by_the_timeout(mirror: Mirror, tmp_path: Path) -> None:
    url = mirror.add(TARBALL_PATH, PAYLOAD)
    mirror.hang(TARBALL_PATH)
    started = time.monotonic()

    with pytest.raises(DownloadError) as caught:
        fetch_to_cache(
            url,
            tmp_path,
            TARBALL,
            PAYLOAD_SHA3,
            policy=FetchPolicy(connect_timeout=1, read_timeout=1, attempts=2, backoff=0),
        )

    elapsed = time.monotonic() - started
    assert elapsed < 8, elapsed
    assert "2 attempts" in caught.value.message
    assert "timed out" in caught.value.message
    assert mirror.count(TARBALL_PATH) == 2
    assert listing(tmp_path) == []


def test_a_refused_connection_is_a_download_error(tmp_path: Path) -> None:
    with Mirror() as gone:
        url = gone.url + TARBALL_PATH
    # the port is closed now

    with pytest.raises(DownloadError) as caught:
        fetch_to_cache(
            url, tmp_path, TARBALL, PAYLOAD_SHA3, policy=FetchPolicy(attempts=2, backoff=0)
        )

    assert "2 attempts" in caught.value.message
    assert listing(tmp_path) == []


URL = "http://mirror.example:8080/x.tar.gz"


def as_requests_raises(cause: BaseException, text: str) -> BaseException:
    """A socket error as requests hands it over: ConnectionError(MaxRetryError(reason=
    NewConnectionError(text))), the socket's error the context of urllib3's."""
    import urllib3

    new = urllib3.exceptions.NewConnectionError(
        None, f"Failed to establish a new connection: {text}"
    )
    new.__context__ = cause
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, URL, new))


SOCKET_FAILURES = [
    # (what the socket raised, text that says something else, the words)
    (ConnectionRefusedError(111, "x"), "Name or service not known",
     "mirror.example:8080 refused the connection: nothing listens there"),
    (socket.gaierror(-2, "x"), "Connection refused", "cannot resolve mirror.example: no DNS or no network"),
    (OSError(errno.ENETUNREACH, "x"), "Connection reset by peer",
     "no route to mirror.example:8080: the network is unreachable"),
    (OSError(errno.EHOSTUNREACH, "x"), "", "no route to mirror.example:8080: the network is unreachable"),
    (ConnectionResetError(104, "x"), "No route to host", "mirror.example:8080 closed the connection"),
]  # fmt: skip


@pytest.mark.parametrize("cause, text, words", SOCKET_FAILURES)
def test_socket_failures_are_told_apart_by_type_not_by_their_text(
    cause: BaseException, text: str, words: str
) -> None:
    from sqlite_provision.source.fetch import _describe

    assert _describe(as_requests_raises(cause, text), URL) == words


def test_a_peer_that_hangs_up_mid_answer_is_told_by_type() -> None:
    """urllib3 passes RemoteDisconnected as an argument of ProtocolError("Connection aborted.")."""
    import http.client

    import urllib3

    from sqlite_provision.source.fetch import _describe

    aborted = urllib3.exceptions.ProtocolError(
        "Connection aborted.", http.client.RemoteDisconnected("Name or service not known")
    )
    said = _describe(requests.exceptions.ConnectionError(aborted), URL)
    assert said == "mirror.example:8080 closed the connection"


def test_words_in_a_message_alone_are_not_taken_for_a_cause() -> None:
    from sqlite_provision.source.fetch import _describe

    said = _describe(requests.exceptions.ConnectionError("Connection refused"), URL)
    assert said == "Connection refused"


def test_a_tls_failure_is_not_retried_and_hints_at_ca_bundles(
    mirror: Mirror, tmp_path: Path
) -> None:
    # TLS spoken to a plain-HTTP server fails in the handshake, like a bad certificate would.
    mirror.add(TARBALL_PATH, PAYLOAD)
    url = f"https://127.0.0.1:{mirror.port}{TARBALL_PATH}"

    with pytest.raises(DownloadError) as caught:
        fetch_to_cache(
            url, tmp_path, TARBALL, PAYLOAD_SHA3, policy=FetchPolicy(attempts=3, backoff=0)
        )

    assert caught.value.hint is not None
    assert "SSL_CERT_FILE" in caught.value.hint and "REQUESTS_CA_BUNDLE" in caught.value.hint
    assert listing(tmp_path) == []


def test_a_certifi_that_cannot_say_where_its_bundle_is_falls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In the .pyz on CPython 3.7 to 3.9, certifi.where() raises FileNotFoundError (the
    RHEL 9 look-alike's python 3.9 showed it, failing every download): the session then
    verifies with the host's bundle, or else certifi's own copied out of the archive."""
    import certifi

    from sqlite_provision.source import fetch

    def where() -> str:
        raise FileNotFoundError("certifi/cacert.pem")

    monkeypatch.setattr(certifi, "where", where)
    host = [b for b in fetch.SYSTEM_CA_BUNDLES if os.path.isfile(b)]
    with make_session() as session:
        assert session.verify == (host[0] if host else fetch._extracted_bundle[0])
    monkeypatch.setattr(fetch, "SYSTEM_CA_BUNDLES", ())
    with make_session() as session:
        assert isinstance(session.verify, str)
        assert b"-----BEGIN CERTIFICATE-----" in Path(session.verify).read_bytes()


def test_keyboard_interrupt_mid_download_leaves_no_part_file(
    mirror: Mirror, tmp_path: Path
) -> None:
    url = mirror.add(TARBALL_PATH, PAYLOAD)
    seen: List[List[str]] = []

    def interrupt(response: requests.Response, *args: object, **kwargs: object) -> None:
        seen.append(listing(tmp_path))
        raise KeyboardInterrupt

    session = make_session()
    session.hooks["response"].append(interrupt)
    with pytest.raises(KeyboardInterrupt):
        fetch_to_cache(url, tmp_path, TARBALL, PAYLOAD_SHA3, session=session)

    assert len(seen) == 1 and len(seen[0]) == 1
    assert seen[0][0].startswith("." + TARBALL + ".") and seen[0][0].endswith(".part")
    assert listing(tmp_path) == []


def test_only_http_and_https_urls(tmp_path: Path) -> None:
    """Refused before any connection, with the network layer's own error: the caller (the
    Fetch step, resolve_latest) says it was a usage error."""
    for url in ("ftp://example.org/x.tar.gz", "file:///etc/passwd", "example.org/x.tar.gz"):
        with pytest.raises(RefusedRequest) as caught:
            fetch_to_cache(url, tmp_path, "x.tar.gz", PAYLOAD_SHA3)
        assert caught.value.message == f"the download URL {url!r} is not an http:// or https:// URL"
        assert caught.value.hint is not None and "--tarball FILE" in caught.value.hint
        with pytest.raises(RefusedRequest):
            fetch_text(url)
    for name in ("", ".", "..", "a/b.tar.gz"):
        with pytest.raises(RefusedRequest) as caught:
            fetch_to_cache("http://127.0.0.1:9/x", tmp_path, name, PAYLOAD_SHA3)
        assert caught.value.message == f"not a plain file name: {name!r}"
    assert not isinstance(RefusedRequest("x"), UsageError)
    assert listing(tmp_path) == []


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal(mirror: Mirror, tmp_path: Path) -> None:
    """The meter fetch_to_cache feeds, as output.py draws it on a terminal: one line that
    rewrites itself, ended once."""
    url = mirror.add(TARBALL_PATH, PAYLOAD)
    terminal = Terminal()
    shown = StderrProgress(terminal)

    fetch_to_cache(
        url, tmp_path, TARBALL, PAYLOAD_SHA3,
        progress=lambda done, total, finished: shown.download(TARBALL, done, total, finished),
    )  # fmt: skip

    err = terminal.getvalue()
    assert "100%" in err
    assert err.endswith("\n")
    assert err.count("\n") == 1


def test_no_progress_output_by_default(
    mirror: Mirror, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = mirror.add(TARBALL_PATH, PAYLOAD)

    fetch_to_cache(url, tmp_path, TARBALL, PAYLOAD_SHA3)

    assert capsys.readouterr().err == ""


def test_requests_carry_the_user_agent(mirror: Mirror) -> None:
    mirror.add("/ua", b"x")
    with make_session() as session:
        response = session.get(mirror.url + "/ua", timeout=5)
    assert response.request.headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("sqlite-provision/")


# fetch_text


def test_fetch_text_reads_the_download_page(
    sqlite_mirror: Mirror, shared_tarballs: SharedTarballs
) -> None:
    page = fetch_text(sqlite_mirror.url + "/download.html")

    lines = page.splitlines()
    header = lines.index("PRODUCT,VERSION,RELATIVE-URL,SIZE-IN-BYTES,SHA3-HASH")
    assert lines[header - 1] == "Download product data for scripts to read"
    assert lines[header - 2] == "<!--"
    assert lines[header + 1].startswith("PRODUCT,2026-11-20 12:00 UTC,snapshot/")
    info = shared_tarballs["3.44.2"]
    row = "PRODUCT,3.44.2,2023/{},{},{}".format(
        TARBALL, info["path"].stat().st_size, info["sha3_256"]
    )
    assert row in lines
    assert "-->" in lines[lines.index(row) :]


def test_fetch_text_retries_like_downloads(mirror: Mirror) -> None:
    mirror.add("/download.html", b"<html>hello</html>")
    mirror.fail("/download.html", [500])

    assert (
        fetch_text(mirror.url + "/download.html", policy=FetchPolicy(backoff=0))
        == "<html>hello</html>"
    )
    assert mirror.count("/download.html") == 2


def test_fetch_text_404(mirror: Mirror) -> None:
    with pytest.raises(DownloadError, match="404"):
        fetch_text(mirror.url + "/download.html", policy=FetchPolicy(backoff=0))
    assert mirror.count() == 1


def test_fetch_text_refuses_more_than_5_mb(mirror: Mirror) -> None:
    mirror.add("/download.html", b"a" * (5 * 1024 * 1024 + 1))
    with pytest.raises(DownloadError, match="larger than 5 MB"):
        fetch_text(mirror.url + "/download.html", policy=FetchPolicy(backoff=0))
    assert mirror.count() == 1


# checksums


def test_parse_checksum_normalizes() -> None:
    digest = "AB" * 32
    checksum = parse_checksum("sha3_256", "  " + digest + "\n")
    assert checksum == Checksum("sha3_256", "ab" * 32)
    assert checksum.label == "SHA3-256"
    assert HASH_ALGORITHMS == {"sha3_256": "SHA3-256", "sha256": "SHA-256"}


@pytest.mark.parametrize(
    ("algorithm", "text", "start"),
    [
        ("sha3_256", "0123456789ab", "--sha3-256 must be 64 hex characters, got 12: "),
        ("sha256", "a" * 65, "--sha256 must be 64 hex characters, got 65: "),
        ("sha256", "g" * 64, "--sha256 must be 64 hex characters, got 64: "),
        ("sha256", "", "--sha256 must be 64 hex characters, got 0: "),
    ],
)
def test_parse_checksum_rejects(algorithm: str, text: str, start: str) -> None:
    with pytest.raises(ChecksumError) as caught:
        parse_checksum(algorithm, text)
    assert caught.value.message.startswith(start)
    assert caught.value.hint
    assert caught.value.exit_code == 4


def test_parse_checksum_unknown_algorithm() -> None:
    with pytest.raises(UsageError):
        parse_checksum("md5", "a" * 32)


def test_verify_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    assert not verify_file(path, PAYLOAD_SHA3)  # missing
    path.write_bytes(PAYLOAD)
    assert verify_file(path, PAYLOAD_SHA3)
    assert file_digest(path, "sha256") == hashlib.sha256(PAYLOAD).hexdigest()
    path.write_bytes(PAYLOAD + b"\0")
    assert not verify_file(path, PAYLOAD_SHA3)


# make_session and the CA bundle

CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture
def ca_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "corporate-ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


def test_ssl_cert_file_is_used_when_it_is_the_only_setting(ca_file: Path) -> None:
    policy = read_environment(variables={"SSL_CERT_FILE": str(ca_file)}).fetch
    assert policy.ca_bundle == str(ca_file)
    session = make_session(policy.ca_bundle)
    assert session.verify == str(ca_file)
    assert session.trust_env is True
    assert session.headers["User-Agent"] == USER_AGENT


@pytest.mark.parametrize("winner", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_requests_own_variables_win_over_ssl_cert_file(
    ca_file: Path, monkeypatch: pytest.MonkeyPatch, winner: str, tmp_path: Path
) -> None:
    other = tmp_path / "other.pem"
    other.write_text("x")
    variables = {"SSL_CERT_FILE": str(ca_file), winner: str(other)}
    policy = read_environment(variables=variables).fetch
    assert policy.ca_bundle is None
    monkeypatch.setenv(winner, str(other))  # requests reads its own variables itself
    session = make_session(policy.ca_bundle)
    assert session.verify is True  # requests applies REQUESTS_CA_BUNDLE per request itself
    settings = session.merge_environment_settings("https://www.sqlite.org/", {}, None, None, None)
    assert settings["verify"] == str(other)


def test_verification_stays_on_without_ca_variables(ca_file: Path) -> None:
    assert make_session(read_environment(variables={}).fetch.ca_bundle).verify is True


def test_a_missing_ssl_cert_file_is_ignored(ca_file: Path, tmp_path: Path) -> None:
    policy = read_environment(variables={"SSL_CERT_FILE": str(tmp_path / "nope.pem")}).fetch
    assert policy.ca_bundle is None
    assert make_session(policy.ca_bundle).verify is True


# the mirror itself


def test_mirror_head_and_404(mirror: Mirror) -> None:
    mirror.add("/2023/a.tar.gz", b"12345")
    head = requests.head(mirror.url + "/2023/a.tar.gz", timeout=5)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "5"
    assert head.headers["Content-Type"] == "application/gzip"
    assert "Content-Encoding" not in head.headers
    assert requests.get(mirror.url + "/nothing", timeout=5).status_code == 404
    assert mirror.requests == ["/2023/a.tar.gz", "/nothing"]
    assert mirror.count("/2023/") == 1
    assert not mirror.url.endswith("/")
