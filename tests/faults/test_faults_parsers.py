"""Property tests: whatever text reaches the version parser, the checksum parser, the tarball
name parser or the download-page parser, the only exception is the tool's own error type (a
ProvisionError, which the CLI turns into an exit code and a message), never a crash."""

from __future__ import annotations

from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlite_provision.digests import parse_checksum
from sqlite_provision.errors import ProvisionError
from sqlite_provision.source.catalog import parse_download_page
from sqlite_provision.versions import parse_version, version_from_tarball_name

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that looks like the parts of a download page, so that hypothesis gets past the first
# checks: the block title, the header, PRODUCT rows with odd fields.
PIECES = st.sampled_from([
    "<!--", "-->", "\n", ",", "PRODUCT", "PRODUCT,VERSION,RELATIVE-URL,SIZE-IN-BYTES,SHA3-HASH",
    "Download product data for scripts to read", "3.44.2", "3.53.4", "3.", "2023/",
    "sqlite-autoconf-3440200.tar.gz", "sqlite-autoconf-9990000.tar.gz", "2023-05-02 16:34 UTC",
    "a" * 64, "0" * 63, "\"", "\x00", "é", " ",
])  # fmt: skip
PAGES = st.lists(PIECES, max_size=40).map("".join) | st.text(max_size=2000)


def only_provision_errors(parse: Callable[[str], object], text: str) -> None:
    try:
        parse(text)
    except ProvisionError as exc:
        assert exc.exit_code in (2, 4), exc
        assert str(exc)


@SETTINGS
@given(PAGES)
def test_download_page_parser_raises_only_provision_errors(text: str) -> None:
    only_provision_errors(parse_download_page, text)


VERSIONISH = st.lists(
    st.sampled_from(["3", ".", "44", "2", "0", "-", "latest", " ", "\n", "99", "٣", "+"]),
    max_size=12,
).map("".join)


@SETTINGS
@given(VERSIONISH | st.text(max_size=50))
def test_version_parser_raises_only_provision_errors(text: str) -> None:
    only_provision_errors(parse_version, text)


@SETTINGS
@given(st.text(max_size=80))
def test_tarball_name_parser_never_raises(text: str) -> None:
    version_from_tarball_name(text)


@pytest.mark.parametrize("algorithm", ["sha256", "sha3_256"])
@SETTINGS
@given(text=st.text(alphabet="0123456789abcdefABCDEFgx \t", max_size=80) | st.text(max_size=80))
def test_checksum_parser_raises_only_provision_errors(algorithm: str, text: str) -> None:
    only_provision_errors(lambda t: parse_checksum(algorithm, t), text)
