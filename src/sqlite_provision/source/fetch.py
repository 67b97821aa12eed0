"""The only network code of the tool: an HTTP session, retries, the download cache.

Downloads stream into a hidden ``.part`` file next to the cache entry, are hashed while
they stream, and are renamed into place only once the digest matches, so the cache never
holds a partial or unverified tarball, whatever happens (a dead mirror, a full disk, Ctrl-C).

``requests`` is imported inside the functions that need it: importing it costs more than
the rest of the CLI, and ``--help`` must stay fast.
"""

import errno
import http.client
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    BinaryIO,
    Callable,
    Iterator,
    List,
    Optional,
    Tuple,
    TypeVar,
)
from urllib.parse import urlsplit

from sqlite_provision import __version__
from sqlite_provision.config import (
    DEFAULT_FETCH_POLICY,
    NOT_HTTP_HINT,
    FetchPolicy,
    not_http_url,
)
from sqlite_provision.digests import Checksum, matches, mismatch, new_hash, verify_file
from sqlite_provision.errors import DownloadError
from sqlite_provision.files import fsync_dir

if TYPE_CHECKING:
    import requests

CHUNK_SIZE = 64 * 1024
MAX_TEXT_BYTES = 5 * 1024 * 1024
USER_AGENT = f"sqlite-provision/{__version__}"

# 408 and 429 are client-side codes that mean "try again later", not "you asked wrongly".
_RETRYABLE_STATUSES = frozenset({408, 429})
_SSL_HINT = (
    "if a proxy or private CA intercepts TLS, point SSL_CERT_FILE (or REQUESTS_CA_BUNDLE) "
    "at a PEM bundle that holds its certificate"
)
_NETWORK_HINT = (
    "check the network; behind a proxy set HTTPS_PROXY or HTTP_PROXY (and NO_PROXY); or point "
    "--mirror at a "
    "server you can reach; on a host without network, download the tarball elsewhere and pass "
    "--tarball FILE (a release's file name needs no hash)"
)

Log = Callable[[str], None]
# A download meter: (bytes so far, expected total or None, finished).
Meter = Callable[[int, Optional[int], bool], None]
MISMATCH_HINT = "check the mirror, or pass --sha3-256/--sha256 if you built the tarball yourself"


def _no_log(message: str) -> None:
    pass


def _no_meter(done: int, total: Optional[int], finished: bool) -> None:
    pass


@dataclass(frozen=True)
class FetchResult:
    path: Path
    downloaded: bool  # False when the cached file already verified
    bytes: int
    attempts: int  # HTTP attempts made; 0 when served from the cache


# The distributions' own bundles, for when certifi's file is not a file (inside the .pyz).
SYSTEM_CA_BUNDLES = (
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL, CentOS, Fedora, Amazon Linux
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu
    "/etc/ssl/cert.pem",
)
_extracted_bundle: List[str] = []


def _certifi_file(certifi: Any) -> Optional[str]:
    """certifi's bundle where it is a file (not a zip member, and where() does not raise)."""
    try:
        where = str(certifi.where())
    except OSError:
        return None
    return where if os.path.isfile(where) else None


def _ca_bundle_in_archive() -> Optional[str]:
    """Run as sqlite-provision.pyz (its vendored certifi, from the zip or from the unpacked
    cache), the tool verifies with the host's CA bundle, as the host's own tools do (a CA added
    with update-ca-trust reaches it), and so trusts the same CAs however the pyz started. Only a
    host without a bundle gets certifi's: its file where it is one (the cache), else a copy out
    of the zip, where cacert.pem is a member that OpenSSL cannot open (certifi.where() returns
    a path that is no file on 3.6, and raises on 3.7 to 3.9). Installed by pip: None, certifi's
    (unless certifi cannot name a file)."""
    import certifi

    own = _certifi_file(certifi)
    if own is not None and "_vendor" not in Path(certifi.__file__ or "").parts:
        return None
    for candidate in SYSTEM_CA_BUNDLES:
        if os.path.isfile(candidate):
            return candidate
    if own is not None:
        return own
    if not _extracted_bundle:
        import atexit
        import pkgutil

        data = pkgutil.get_data("certifi", "cacert.pem")
        if data is None:
            return None
        fd, name = tempfile.mkstemp(prefix="sqlite-provision-ca-", suffix=".pem")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        atexit.register(os.unlink, name)
        _extracted_bundle.append(name)
    return _extracted_bundle[0]


def _requests_importable() -> None:
    """requests calls certifi.where() as it is imported (requests.utils, DEFAULT_CA_BUNDLE_PATH),
    which raises inside the .pyz on CPython 3.7 to 3.9 and so failed every download there.
    requests.certs invites packagers to redefine where(): it then names the bundle that
    _ca_bundle_in_archive finds, the one the session verifies with."""
    if "requests" in sys.modules:
        return
    import certifi

    try:
        certifi.where()
    except OSError:
        bundle = _ca_bundle_in_archive()
        if bundle is not None:
            certifi.where = lambda: bundle


def make_session(ca_bundle: Optional[str] = None) -> "requests.Session":
    """A session that verifies TLS (with `ca_bundle`, the one the environment names, when
    given: FetchPolicy.ca_bundle), takes proxies from the environment and names the tool."""
    _requests_importable()
    import requests

    session = requests.Session()
    # requests reads HTTP(S)_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE and .netrc itself.
    session.trust_env = True
    session.verify = True
    bundle = ca_bundle or _ca_bundle_in_archive()
    if bundle is not None:
        session.verify = bundle
    session.headers["User-Agent"] = USER_AGENT
    return session


class RefusedRequest(ValueError):
    """A request the network layer will not make (not an http(s) URL, not a plain file name),
    refused before any connection: the caller's input was wrong, and the caller says so."""

    def __init__(self, message: str, hint: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _check_request(url: str, filename: Optional[str] = None) -> None:
    problem = not_http_url(url, "the download URL")
    if problem is not None:
        raise RefusedRequest(problem, hint=NOT_HTTP_HINT)
    if filename is not None and (
        not filename or filename in (".", "..") or "/" in filename or os.sep in filename
    ):
        raise RefusedRequest(f"not a plain file name: {filename!r}")


class _Retryable(Exception):
    """A failure worth another attempt: the connection, a timeout, a short body, a 5xx."""


def _check_status(response: "requests.Response", url: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = "HTTP {} {}".format(status, response.reason or "").strip()
    if status >= 500 or status in _RETRYABLE_STATUSES:
        raise _Retryable(reason)
    if status == 404:
        raise DownloadError(
            f"{reason} not found at {url}",
            hint="check --version (is that release published?) and --mirror",
        )
    raise DownloadError(f"{reason} for {url}", hint=_NETWORK_HINT)


def _check_complete(received: int, expected: Optional[int]) -> None:
    if expected is not None and received != expected:
        raise _Retryable(f"truncated body: got {received} of {expected} bytes")


T = TypeVar("T")


def _with_retries(
    url: str,
    attempt: Callable[["requests.Session"], T],
    policy: FetchPolicy,
    session: Optional["requests.Session"],
    log: Log,
) -> Tuple[T, int]:
    """Call `attempt` until it returns, with exponential backoff; return what it returned and
    the number of attempts made (policy.attempts at most, at least one).

    `attempt` raises _Retryable for transient failures and ProvisionError for final ones;
    requests' exceptions are sorted here, by their type.
    """
    _requests_importable()
    import requests

    failed = requests.exceptions
    active = make_session(policy.ca_bundle) if session is None else session
    try:
        for number in range(1, max(1, policy.attempts) + 1):
            try:
                return attempt(active), number
            except failed.SSLError as exc:  # a ConnectionError too, but never worth a retry
                raise DownloadError(
                    f"TLS verification failed for {url}: {exc}", hint=_SSL_HINT
                ) from exc
            except (
                _Retryable,
                failed.ConnectionError,
                failed.Timeout,
                failed.ChunkedEncodingError,
            ) as exc:
                _retry_or_give_up(exc, url, number, policy, log)
            except failed.RequestException as exc:
                log(f"{url}: {_chain(exc)}")
                raise DownloadError(
                    f"could not download {url}: {_describe(exc, url)}", hint=_NETWORK_HINT
                ) from exc
    finally:
        if session is None:
            active.close()
    raise AssertionError("unreachable")  # pragma: no cover


def _retry_or_give_up(exc: Exception, url: str, number: int, policy: FetchPolicy, log: Log) -> None:
    """After a transient failure of attempt `number`: wait the backoff, or, after the last
    attempt, raise the DownloadError that says why."""
    cause = _describe(exc, url)
    if not isinstance(exc, _Retryable):  # requests' own chain, for the log only
        log(f"{url}: {_chain(exc)}")
    attempts = max(1, policy.attempts)
    if number >= attempts:
        raise DownloadError(
            "could not download {} after {} attempt{}: {}".format(
                url, number, "" if number == 1 else "s", cause
            ),
            hint=_NETWORK_HINT,
        ) from exc
    delay = policy.backoff * (2 ** (number - 1))
    log(
        f"download of {url} failed ({cause}); retrying in {delay:.1f}s "
        f"(attempt {number + 1} of {attempts})"
    )
    if delay > 0:
        time.sleep(delay)


def _chain(exc: BaseException) -> str:
    """The whole chain of causes, for the log (the message says it in words)."""
    parts = []
    seen = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return " <- ".join(parts)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """exc and every exception it wraps: its __cause__ and __context__, urllib3's `reason`
    (MaxRetryError), and the exceptions among its arguments (ProtocolError("Connection
    aborted.", RemoteDisconnected(...)); requests' ConnectionError(MaxRetryError(...)))."""
    seen = set()
    waiting: List[BaseException] = [exc]
    while waiting:
        current = waiting.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        waiting += [e for e in [*wrapped, *current.args] if isinstance(e, BaseException)]


def _unreachable(cause: BaseException) -> bool:
    return isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)


def _closed(cause: BaseException) -> bool:
    return isinstance(
        cause, (ConnectionResetError, ConnectionAbortedError, http.client.RemoteDisconnected)
    )


# What the socket said, by the type of the exception under requests' and urllib3's, in this
# order of precedence: the host has no address, nothing listens, no route, the peer hung up.
_SOCKET_FAILURES: Tuple[Tuple[Callable[[BaseException], bool], str], ...] = (
    (
        lambda cause: isinstance(cause, socket.gaierror),
        "cannot resolve {host}: no DNS or no network",
    ),
    (
        lambda cause: isinstance(cause, ConnectionRefusedError),
        "{where} refused the connection: nothing listens there",
    ),
    (_unreachable, "no route to {where}: the network is unreachable"),
    (_closed, "{where} closed the connection"),
)


def _describe(exc: BaseException, url: str = "") -> str:
    """What happened, in words: no DNS, refused, unreachable, timed out; not requests' chain."""
    import requests

    parts = urlsplit(url)
    host = parts.hostname or "the server"
    where = f"{host}:{parts.port}" if parts.port else host
    if isinstance(exc, requests.exceptions.ProxyError):
        return f"the proxy failed or refused the connection to {where} (HTTPS_PROXY/HTTP_PROXY)"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"connecting to {where} timed out: no route, or a firewall drops the packets"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"{where} stopped sending (read timed out)"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection closed before the whole body arrived"
    if isinstance(exc, requests.exceptions.ConnectionError):
        causes = list(_causes(exc))
        for matches_cause, words in _SOCKET_FAILURES:
            if any(matches_cause(cause) for cause in causes):
                return words.format(host=host, where=where)
    message = str(exc) or type(exc).__name__
    return message if len(message) <= 300 else message[:297] + "..."


def _prepare_cache_dir(cache_dir: Path) -> None:
    if cache_dir.is_dir():
        return
    try:
        cache_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(str(cache_dir), 0o755)  # noqa: S103 - mkdir's mode is masked by the umask
    except OSError as exc:
        raise DownloadError(
            f"cannot create the download cache {cache_dir}: {exc}",
            hint="check the permissions of its parent directory, or run as root",
        ) from exc


def fetch_to_cache(
    url: str,
    cache_dir: Path,
    filename: str,
    checksum: Checksum,
    *,
    log: Log = _no_log,
    progress: Optional[Meter] = None,
    policy: FetchPolicy = DEFAULT_FETCH_POLICY,
    session: Optional["requests.Session"] = None,
) -> FetchResult:
    """Return `cache_dir/filename` verified against `checksum`, downloading it if needed, as
    `policy` says (attempts, timeouts, backoff). A cached file that verifies is used without
    touching the network; one that does not is deleted and downloaded again. A URL that is not
    http(s) or a file name that is not plain: RefusedRequest, before any of that.
    """
    _check_request(url, filename)
    cache_dir = Path(cache_dir)
    target = cache_dir / filename
    cached = _verified_cached(target, checksum, log)
    if cached is not None:
        return cached
    _prepare_cache_dir(cache_dir)
    meter = progress or _no_meter
    received, attempts = _with_retries(
        url,
        lambda active: _download_once(active, url, target, checksum, policy, meter),
        policy,
        session,
        log,
    )
    fsync_dir(cache_dir)
    log(f"downloaded {target} ({received} bytes, {checksum.label} verified)")
    return FetchResult(target, True, received, attempts)


def _verified_cached(target: Path, checksum: Checksum, log: Log) -> Optional[FetchResult]:
    """The cached file, when it verifies; else None, with a stale one deleted."""
    if target.is_file():
        if verify_file(target, checksum):
            log(f"using cached {target} ({checksum.label} verified)")
            return FetchResult(target, False, target.stat().st_size, 0)
        log(f"cached {target} does not match its {checksum.label}; deleting it")
        try:
            target.unlink()
        except OSError as exc:
            raise DownloadError(
                f"cannot delete the stale cached file {target}: {exc}",
                hint=f"delete it by hand, or check the permissions of {target.parent}",
            ) from exc
    elif os.path.lexists(str(target)):
        raise DownloadError(
            f"{target} exists and is not a regular file",
            hint="remove it, or choose another cache directory",
        )
    return None


def _download_once(
    session: "requests.Session",
    url: str,
    target: Path,
    checksum: Checksum,
    policy: FetchPolicy,
    meter: Meter,
) -> int:
    """One attempt: stream into a hidden .part file beside `target`, hashing as it streams, and
    rename it into place once the digest matches; return the bytes received. The .part file is
    gone afterwards, whatever happened."""
    cache_dir = target.parent
    digest = new_hash(checksum.algorithm)
    try:
        fd, part_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".part", dir=str(cache_dir)
        )
    except OSError as exc:
        raise _write_error(cache_dir, exc) from exc
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o644)  # mkstemp makes it 0600
            received = _stream(session, url, policy, out, digest, meter)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if not matches(actual, checksum):
            raise mismatch(target.name, checksum, actual, MISMATCH_HINT, deleted=True)
        os.replace(part_name, str(target))
        return received
    except OSError as exc:
        if _is_requests_error(exc):
            raise
        raise _write_error(cache_dir, exc) from exc
    finally:
        try:
            os.unlink(part_name)
        except FileNotFoundError:
            pass  # renamed into place, or never written


def _stream(
    session: "requests.Session",
    url: str,
    policy: FetchPolicy,
    out: BinaryIO,
    digest: Any,
    meter: Meter,
) -> int:
    """GET url into `out` and `digest`; the bytes received (a short body is _Retryable)."""
    # identity: some servers label .tar.gz as gzip-encoded, and requests would then hand back
    # the decompressed tar, which can never match the digest.
    headers = {"Accept-Encoding": "identity"}
    with session.get(url, stream=True, timeout=policy.timeout, headers=headers) as response:
        _check_status(response, url)
        expected = _content_length(response)
        meter(0, expected, False)
        received = 0
        for chunk in response.iter_content(chunk_size=CHUNK_SIZE):
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            meter(received, expected, False)
        meter(received, expected, True)
        _check_complete(received, expected)
    return received


def _write_error(cache_dir: Path, exc: OSError) -> DownloadError:
    return DownloadError(
        f"cannot write the download into {cache_dir}: {exc}",
        hint=f"check free space and permissions in {cache_dir}",
    )


def _is_requests_error(exc: BaseException) -> bool:
    # requests' exceptions derive from IOError (= OSError); those are network failures,
    # not local disk trouble, and are sorted by _with_retries.
    import requests

    return isinstance(exc, requests.exceptions.RequestException)


def _content_length(response: "requests.Response") -> Optional[int]:
    if response.headers.get("Content-Encoding", "identity").lower() != "identity":
        return None  # the length is of the encoded body, not of what we count
    value = response.headers.get("Content-Length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        return None
    return length if length >= 0 else None


def fetch_text(
    url: str,
    *,
    log: Log = _no_log,
    policy: FetchPolicy = DEFAULT_FETCH_POLICY,
    session: Optional["requests.Session"] = None,
) -> str:
    """GET a small text document (the download page), with the same retry policy.

    Bodies over 5 MB are refused: the download page is a few dozen KB, and a mirror that
    streams endlessly must not exhaust memory.
    """
    _check_request(url)
    text, _ = _with_retries(
        url, lambda active: _read_text(active, url, policy), policy, session, log
    )
    return text


def _read_text(session: "requests.Session", url: str, policy: FetchPolicy) -> str:
    with session.get(url, stream=True, timeout=policy.timeout) as response:
        _check_status(response, url)
        expected = _content_length(response)
        if expected is not None and expected > MAX_TEXT_BYTES:
            raise _too_large(url)
        body = bytearray()
        for chunk in response.iter_content(chunk_size=CHUNK_SIZE):
            body.extend(chunk)
            if len(body) > MAX_TEXT_BYTES:
                raise _too_large(url)
        _check_complete(len(body), expected)
        encoding = response.encoding or "utf-8"
    try:
        return bytes(body).decode(encoding, errors="replace")
    except LookupError:  # an unknown charset in Content-Type
        return bytes(body).decode("utf-8", errors="replace")


def _too_large(url: str) -> DownloadError:
    return DownloadError(
        f"{url} is larger than {MAX_TEXT_BYTES // 2**20} MB; refusing to read it",
        hint="check --mirror: it should serve sqlite.org's download page",
    )
