"""Run the real CLI with shorter HTTP timeouts: `python short_timeouts.py CONNECT READ ARGS...`.

Only the hung-server case uses it. With the tool's defaults a server that accepts the connection
and never answers costs `retries` times the read timeout (3 x 60 s for the tarball, 3 x 30 s for
the download page) plus the backoff before exit 4: bounded, but too slow for a test suite. The
defaults are not changed; this launcher shortens them in this one process and then runs the CLI
exactly as `python -m sqlite_provision` does.
"""

from __future__ import annotations

import sys

from sqlite_provision.cli import main
from sqlite_provision.source import fetch

if __name__ == "__main__":
    timeout = (float(sys.argv[1]), float(sys.argv[2]))
    del sys.argv[1:3]
    for function in (fetch.fetch_to_cache, fetch.fetch_text):
        assert function.__kwdefaults__ is not None
        function.__kwdefaults__["timeout"] = timeout
    main()
