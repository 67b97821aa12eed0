"""A loopback HTTP mirror laid out like sqlite.org, with fault injection, for tests.

    with Mirror() as m:
        m.add("/2023/sqlite-autoconf-3440200.tar.gz", data)
        m.fail("/2023/sqlite-autoconf-3440200.tar.gz", [500, 503])
        fetch_to_cache(m.url + "/2023/sqlite-autoconf-3440200.tar.gz", ...)
        assert m.count("/2023/") == 3

Faults are keyed by exact path (without the query string) and consumed by requests in
arrival order. Every request path is recorded in `requests`, faults or not.
"""

# Optional/List rather than `X | None`: the tool and its tests run on Python 3.7.

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import Dict, List, Optional, Sequence, Tuple, Type, Union
from urllib.parse import unquote, urlsplit

SNAPSHOT_ROW = (
    "PRODUCT,2026-11-20 12:00 UTC,snapshot/sqlite-snapshot-202611201200.tar.gz,123,"
    + hashlib.sha3_256(b"snapshot").hexdigest()
)

_CONTENT_TYPES = (
    (".html", "text/html; charset=utf-8"),
    (".tar.gz", "application/gzip"),
    (".zip", "application/zip"),
    (".txt", "text/plain; charset=utf-8"),
)


def _content_type(path: str) -> str:
    for suffix, kind in _CONTENT_TYPES:
        if path.endswith(suffix):
            return kind
    return "application/octet-stream"


def _normalize(path: str) -> str:
    path = unquote(urlsplit(path).path)
    return path if path.startswith("/") else "/" + path


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a hung handler must not block stop()
    mirror: Mirror

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up early (timeouts, truncation tests) are expected here


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "sqlite-provision-test-mirror"

    def log_message(self, format: str, *args: object) -> None:
        pass  # no noise on stderr

    def do_GET(self) -> None:
        self.server.mirror._serve(self, head=False)

    def do_HEAD(self) -> None:
        self.server.mirror._serve(self, head=True)


class Mirror:
    """An HTTP server on 127.0.0.1 (a free port), serving registered paths from memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: Dict[str, Union[bytes, Path]] = {}
        self._failures: Dict[str, List[int]] = {}
        self._truncations: Dict[str, Tuple[int, int]] = {}  # path -> (nbytes, times left)
        self._hangs: Dict[str, bool] = {}
        self._stopping = threading.Event()
        # Bound now, so `url` is valid before start(); served once start() runs.
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.mirror = self
        self._thread: Optional[threading.Thread] = None
        self._stopped = False
        self.requests: List[str] = []  # guarded by _lock; read it via count() or a copy
        self.methods: List[Tuple[str, str]] = []  # (method, path), same order as requests

    # lifecycle

    def start(self) -> Mirror:
        if self._stopped:
            raise RuntimeError("a stopped Mirror cannot be restarted; make a new one")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"test-mirror-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()  # releases hung handlers
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> Mirror:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash: url + "/2023/..." is a file's URL."""
        return f"http://127.0.0.1:{self.port}"

    # content

    def add(self, path: str, data: bytes) -> str:
        """Serve `data` at `path`; returns the full URL."""
        path = _normalize(path)
        with self._lock:
            self._files[path] = bytes(data)
        return self.url + path

    def add_file(self, path: str, source: Path) -> str:
        """Serve the file `source` at `path` (read at request time); returns the full URL."""
        path = _normalize(path)
        with self._lock:
            self._files[path] = Path(source)
        return self.url + path

    def remove(self, path: str) -> None:
        with self._lock:
            self._files.pop(_normalize(path), None)

    def add_download_page(
        self,
        releases: Sequence[Tuple[str, str, int, str]],
        snapshot: bool = True,
    ) -> str:
        """Write /download.html with sqlite.org's machine-readable comment block.

        `releases` holds (version, relative_url, size, sha3) for each autoconf tarball, e.g.
        ("3.44.2", "2023/sqlite-autoconf-3440200.tar.gz", 3204841, "6c42..."). Each release
        also gets amalgamation, doc and src rows (made-up sizes and hashes) around its
        autoconf row, as on the real page. Returns the page's URL.
        """
        rows = []
        if snapshot:
            rows.append(SNAPSHOT_ROW)
        for version, relative_url, size, sha3 in releases:
            directory, _, name = relative_url.rpartition("/")
            prefix = directory + "/" if directory else ""
            number = name[len("sqlite-autoconf-") :].split(".", 1)[0]
            rows.append(_fake_row(version, f"{prefix}sqlite-amalgamation-{number}.zip"))
            rows.append(f"PRODUCT,{version},{relative_url},{size},{sha3}")
            rows.append(_fake_row(version, f"{prefix}sqlite-doc-{number}.zip"))
            rows.append(_fake_row(version, f"{prefix}sqlite-src-{number}.zip"))
        page = (
            "<!DOCTYPE html>\n<html><head>\n"
            '<meta http-equiv="content-type" content="text/html; charset=UTF-8">\n'
            "<title>SQLite Download Page</title>\n</head>\n<body>\n"
            "<h1>SQLite Download Page</h1>\n"
            '<table width="100%" cellpadding="5" cellspacing="0">\n'
            '<tr><td colspan="2"><b>Source Code</b></td></tr>\n'
            "</table>\n"
            "<!--\nDownload product data for scripts to read\n"
            "PRODUCT,VERSION,RELATIVE-URL,SIZE-IN-BYTES,SHA3-HASH\n"
            + "".join(row + "\n" for row in rows)
            + "-->\n"
            "<p>Build products are named using one of the following templates:</p>\n"
            "</body></html>\n"
        )
        return self.add("/download.html", page.encode("utf-8"))

    # faults

    def fail(self, path: str, statuses: Sequence[int] = (500, 500, 500)) -> None:
        """Answer the next len(statuses) requests for `path` with those statuses, in order."""
        with self._lock:
            self._failures.setdefault(_normalize(path), []).extend(statuses)

    def truncate(self, path: str, nbytes: int, times: int = 1) -> None:
        """For the next `times` GETs, send the full Content-Length but only `nbytes` of body."""
        with self._lock:
            self._truncations[_normalize(path)] = (nbytes, times)

    def hang(self, path: str) -> None:
        """Accept requests for `path` and never answer them (until stop())."""
        with self._lock:
            self._hangs[_normalize(path)] = True

    def reset_faults(self) -> None:
        with self._lock:
            self._failures.clear()
            self._truncations.clear()
            self._hangs.clear()

    # observation

    def count(self, path_prefix: str = "") -> int:
        """How many requests (any method) had a path starting with `path_prefix`."""
        with self._lock:
            return sum(1 for path in self.requests if path.startswith(path_prefix))

    def clear_requests(self) -> None:
        with self._lock:
            del self.requests[:]
            del self.methods[:]

    # serving

    def _serve(self, handler: _Handler, head: bool) -> None:
        path = _normalize(handler.path)
        with self._lock:
            self.requests.append(path)
            self.methods.append((handler.command, path))
            hang = self._hangs.get(path, False)
            pending = self._failures.get(path)
            status = pending.pop(0) if pending else None
            truncation: Optional[int] = None
            if not head and path in self._truncations:
                nbytes, times = self._truncations[path]
                if times > 0:
                    truncation = nbytes
                    if times == 1:
                        del self._truncations[path]
                    else:
                        self._truncations[path] = (nbytes, times - 1)
            source = self._files.get(path)

        if hang:
            self._stopping.wait()
            handler.close_connection = True
            return
        if status is not None:
            self._send_status(handler, status, head)
            return
        if source is None:
            self._send_status(handler, 404, head)
            return
        data = source.read_bytes() if isinstance(source, Path) else source

        handler.send_response(200)
        handler.send_header("Content-Type", _content_type(path))
        handler.send_header("Content-Length", str(len(data)))
        if truncation is not None:
            handler.send_header("Connection", "close")
        handler.end_headers()
        if head:
            return
        if truncation is None:
            handler.wfile.write(data)
            return
        handler.wfile.write(data[:truncation])
        handler.wfile.flush()
        handler.close_connection = True
        try:
            handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    @staticmethod
    def _send_status(handler: _Handler, status: int, head: bool) -> None:
        body = f"{status} from the test mirror\n".encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if not head:
            handler.wfile.write(body)


def _fake_row(version: str, relative_url: str) -> str:
    digest = hashlib.sha3_256(relative_url.encode()).hexdigest()
    size = 1000000 + int(digest[:5], 16)
    return f"PRODUCT,{version},{relative_url},{size},{digest}"
