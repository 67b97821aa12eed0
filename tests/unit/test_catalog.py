"""Unit tests for the release catalog (source/catalog.py), version text (versions.py), the data
file and scripts/build_catalog.py."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
import re
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlite_provision.errors import DownloadError, ProvisionError, UsageError
from sqlite_provision.source import catalog
from sqlite_provision.source.catalog import (
    DEFAULT_BASE_URL,
    Release,
    default_release,
    find_release,
    load_catalog,
    parse_download_page,
    preferred_checksum,
    resolve_version,
)
from sqlite_provision.versions import (
    number_to_version,
    parse_version,
    version_from_tarball_name,
    version_to_number,
)
from support import REPO_ROOT, unavailable

DATA_FILE = REPO_ROOT / "src" / "sqlite_provision" / "data" / "releases.csv"
HEX64 = re.compile(r"[0-9a-f]{64}")


def shared_dir() -> Optional[Path]:
    """../shared (or $SQLITE_PROVISION_SHARED, relative to the repo root), if it exists."""
    path = Path(os.environ.get("SQLITE_PROVISION_SHARED", "../shared"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path if path.is_dir() else None


def need_shared(*parts: str) -> Path:
    base = shared_dir()
    if base is None or not base.joinpath(*parts).exists():
        where = "/".join(("shared", *parts))
        unavailable(f"{where} not found; set SQLITE_PROVISION_SHARED to run this test")
    return base.joinpath(*parts)


def load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_catalog", REPO_ROOT / "scripts" / "build_catalog.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_hash(name: str) -> str:
    return hashlib.sha3_256(name.encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# version <-> number


@pytest.mark.parametrize(
    ("version", "number"),
    [
        ("3.39.2", "3390200"),  # the README's example; SQLITE_VERSION_NUMBER would be 3039002
        ("3.44.2", "3440200"),
        ("3.53.4", "3530400"),
        ("3.7.17", "3071700"),
        ("3.0.0", "3000000"),
        ("3.8.11.1", "3081101"),  # a 4-part branch release
        ("3.99.99.99", "3999999"),
    ],
)
def test_version_number_round_trip(version: str, number: str) -> None:
    assert version_to_number(version) == number
    assert number_to_version(number) == version
    assert Release(version, "2023-01-01").number == number
    assert Release(version, "2023-01-01").tarball_name == f"sqlite-autoconf-{number}.tar.gz"
    assert version_from_tarball_name(f"sqlite-autoconf-{number}.tar.gz") == version


def test_number_is_not_sqlite_version_number() -> None:
    assert version_to_number("3.39.2") != str(3 * 1000000 + 39 * 1000 + 2)


@pytest.mark.parametrize(
    "number",
    ["", "339020", "33902000", "4390200", "3.39.2", " 3390200", "3390200\n", "\uff13390200"],
)
def test_number_to_version_rejects(number: str) -> None:
    with pytest.raises(UsageError):
        number_to_version(number)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "sqlite-autoconf-3440200.tar.gz.part",
        "2023/sqlite-autoconf-3440200.tar.gz",
        "sqlite-amalgamation-3440200.zip",
        "sqlite-autoconf-344020.tar.gz",
        "sqlite-autoconf-4440200.tar.gz",
        "sqlite-autoconf-3440200.zip",
        "SQLITE-AUTOCONF-3440200.TAR.GZ",
    ],
)
def test_version_from_tarball_name_rejects(name: str) -> None:
    assert version_from_tarball_name(name) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3.44.2", (3, 44, 2)),
        ("3.8.11.1", (3, 8, 11, 1)),
        ("3.0.0", (3, 0, 0)),
        ("3.99.0", (3, 99, 0)),  # parses; only the catalog lookup refuses it
    ],
)
def test_parse_version_accepts(text: str, expected: Tuple[int, ...]) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "latest-ish",
        " 3.1.1",
        "3.1.1 ",
        "3.1.1\n",
        "3.44.2x",
        "v3.44.2",
        "3.24",
        "3",
        "4.0.0",
        "2.8.17",
        "3.44.2.0",
        "3.44.2.1.1",
        "3.08.0",
        "3.100.0",
        "3..2",
        "3.4\uff14.2",
        "3,44,2",
    ],
)
def test_parse_version_rejects(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_version(text)
    message = str(info.value)
    assert repr(text) in message
    assert "3.X.Y" in message


# --------------------------------------------------------------------------------------------
# the catalog


def test_catalog_is_newest_first_and_unique() -> None:
    releases = load_catalog()
    keys = [release.key for release in releases]
    assert keys == sorted(keys, reverse=True)
    assert len(set(keys)) == len(keys)
    assert releases[0].version == "3.53.4"
    assert releases[-1].version == "3.24.0"


def test_catalog_is_cached_and_callers_cannot_corrupt_it() -> None:
    first = load_catalog()
    first.clear()
    second = load_catalog()
    assert second and all(a is b for a, b in zip(second, load_catalog()))


def test_load_catalog_sorts_reads_flags_and_skips_withdrawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "releases.csv"
    data.write_text(
        "version,released,sha3_256,sha256,withdrawn,note\n"
        "3.9.1,2015-01-01,,,,\n"
        "3.10.0,2016-01-01,,,1,pulled\n"
        "3.8.11.1,2015-01-02,,,,branch\n"
        "3.9.0,2015-06-01,,,,\n"
    )
    monkeypatch.setattr(catalog, "_catalog_text", data.read_text)
    monkeypatch.setattr(catalog, "_catalog", None)
    monkeypatch.setattr(catalog, "_by_key", {})
    versions = [release.version for release in load_catalog()]
    assert versions == ["3.10.0", "3.9.1", "3.9.0", "3.8.11.1"]  # by version, not text
    newest = find_release("3.10.0")
    assert newest is not None and newest.withdrawn and newest.note == "pulled"
    assert default_release().version == "3.9.1"
    with pytest.raises(UsageError) as info:
        resolve_version("3.10.0", allow_withdrawn=False)
    assert "3.9.1" in str(info.value) and "pulled" in str(info.value)


def test_url_year_is_the_release_year_for_every_release() -> None:
    for release in load_catalog():
        assert re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", release.released), release
        assert release.year == int(release.released[:4])
        assert release.url() == (
            f"https://www.sqlite.org/{release.released[:4]}/"
            f"sqlite-autoconf-{version_to_number(release.version)}.tar.gz"
        )


@pytest.mark.parametrize(
    ("version", "url"),
    [
        ("3.37.1", "https://www.sqlite.org/2021/sqlite-autoconf-3370100.tar.gz"),
        ("3.37.2", "https://www.sqlite.org/2022/sqlite-autoconf-3370200.tar.gz"),
        ("3.44.2", "https://www.sqlite.org/2023/sqlite-autoconf-3440200.tar.gz"),
        ("3.53.4", "https://www.sqlite.org/2026/sqlite-autoconf-3530400.tar.gz"),
    ],
)
def test_known_urls(version: str, url: str) -> None:
    release = find_release(version)
    assert release is not None
    assert release.url() == url
    assert release.url(DEFAULT_BASE_URL + "/") == url


def test_url_with_a_mirror_and_relative_url() -> None:
    release = Release("3.44.2", "2023-11-24")
    assert release.url("http://127.0.0.1:8000/") == (
        "http://127.0.0.1:8000/2023/sqlite-autoconf-3440200.tar.gz"
    )
    page = Release("3.54.0", "", relative_url="2027/sqlite-autoconf-3540000.tar.gz")
    assert page.year == 2027
    assert page.relative_path == "2027/sqlite-autoconf-3540000.tar.gz"
    assert page.url("http://mirror/") == "http://mirror/2027/sqlite-autoconf-3540000.tar.gz"
    with pytest.raises(UsageError):
        Release("3.54.0", "").url()


def test_every_hash_is_64_lowercase_hex_and_sha256_is_not_sha3() -> None:
    releases = load_catalog()
    sha3s = {r.sha3_256 for r in releases if r.sha3_256}
    for release in releases:
        for value in (release.sha256, release.sha3_256):
            assert value is None or HEX64.fullmatch(value), release
        assert release.sha256 is None or release.sha256 not in sha3s, release


@pytest.mark.parametrize(
    ("version", "wrong_prefix"),
    [("3.51.0", "2c37c3678df7"), ("3.51.2", "e0f7ae1c"), ("3.53.1", "36ca1436")],
)
def test_no_known_wrong_sha256(version: str, wrong_prefix: str) -> None:
    release = find_release(version)
    assert release is not None and release.sha256 is not None
    assert not release.sha256.startswith(wrong_prefix)


def test_withdrawn_3_52_0_is_refused_unless_allowed() -> None:
    assert [r.version for r in load_catalog() if r.withdrawn] == ["3.52.0"]
    with pytest.raises(UsageError) as info:
        resolve_version("3.52.0", allow_withdrawn=False)
    text = str(info.value)
    assert "withdrawn" in text
    assert "--allow-withdrawn" in text
    assert "3.53.4" in text
    release = resolve_version("3.52.0", allow_withdrawn=True)
    assert release.version == "3.52.0" and release.withdrawn


def test_default_release_is_newest_not_withdrawn() -> None:
    assert default_release().version == "3.53.4"
    assert not default_release().withdrawn


def test_resolve_version() -> None:
    assert resolve_version("3.44.2", allow_withdrawn=False) == find_release("3.44.2")
    with pytest.raises(UsageError) as info:
        resolve_version("3.99.0", allow_withdrawn=True)
    assert info.value.message == (
        "unknown SQLite version 3.99.0; `sqlite-provision versions` lists the known ones; "
        "for another release pass --url with --sha3-256/--sha256"
    )
    with pytest.raises(UsageError):
        resolve_version("latest-ish", allow_withdrawn=True)


def test_find_release_on_junk_is_none() -> None:
    assert find_release("3.44") is None
    assert find_release("") is None
    assert find_release("3.99.0") is None


@pytest.mark.parametrize("version", ["3.25.0", "3.31.0", "3.35.1"])
def test_releases_without_any_known_hash(version: str) -> None:
    release = find_release(version)
    assert release is not None
    assert release.sha256 is None
    assert release.sha3_256 is None
    assert preferred_checksum(release) is None  # fail closed: the user must give one


def test_preferred_checksum() -> None:
    newest = find_release("3.53.4")
    assert newest is not None
    assert preferred_checksum(newest) == ("sha3_256", newest.sha3_256)
    older = find_release("3.44.2")
    assert older is not None and older.sha3_256 is None
    assert preferred_checksum(older) == (
        "sha256",
        "1c6719a148bc41cf0f2bbbe3926d7ce3f5ca09d878f1246fcc20767b175bb407",
    )


def test_data_file_header_is_exact() -> None:
    with DATA_FILE.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == ["version", "released", "sha3_256", "sha256", "withdrawn", "note"]


def test_data_file_agrees_with_shared_reference() -> None:
    source = need_shared("reference", "sqlite-releases.csv")
    with source.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(load_catalog())
    for row in rows:
        release = find_release(row["version"])
        assert release is not None, row["version"]
        assert release.released == row["released"]
        assert release.url() == row["url"]
        assert (release.sha256 or "") == row["sha256"]
        assert (release.sha3_256 or "") == row["sha3_256"]
        assert release.withdrawn == (row["withdrawn"] == "yes")
        assert release.note == row["note"]


def test_catalog_agrees_with_the_shared_tarballs() -> None:
    folder = need_shared("sqlite-tarballs")
    for sums, attribute in (("SHA256SUMS", "sha256"), ("SHA3-256SUMS", "sha3_256")):
        for line in (folder / sums).read_text().splitlines():
            digest, name = line.split()
            version = version_from_tarball_name(name)
            assert version is not None
            release = find_release(version)
            assert release is not None
            known = getattr(release, attribute)
            assert known is None or known == digest, (name, attribute)


# --------------------------------------------------------------------------------------------
# scripts/build_catalog.py


def test_build_script_regenerates_the_committed_data_file(tmp_path: Path) -> None:
    source = need_shared("reference", "sqlite-releases.csv")
    output = tmp_path / "releases.csv"
    assert load_build_script().main([str(source), "--output", str(output)]) == 0
    assert output.read_bytes() == DATA_FILE.read_bytes()


GOOD_SOURCE_ROWS: List[Dict[str, str]] = [
    {
        "version": "3.51.0",
        "released": "2025-11-04",
        "url": "https://www.sqlite.org/2025/sqlite-autoconf-3510000.tar.gz",
        "sha256": "42e26dfdd96aa2e6b1b1be5c88b0887f9959093f650d693cb02eb9c36d146ca5",
        "sha256_sources": "BR, HB, OE",
        "sha3_256": "fa52f9cc74dbca004aa650ae698036a3350611f672649e165078f4eae21d6a2e",
        "withdrawn": "",
        "note": "",
    },
    {
        "version": "3.37.1",
        "released": "2021-12-30",
        "url": "https://www.sqlite.org/2021/sqlite-autoconf-3370100.tar.gz",
        "sha256": "40f22a13bf38bbcd4c7ac79bcfb42a72d5aa40930c1f3f822e30ccce295f0f2e",
        "sha256_sources": "BR, CF, OE, SP",
        "sha3_256": "",
        "withdrawn": "",
        "note": "",
    },
]


def write_source(path: Path, rows: List[Dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_build_script_accepts_good_rows(tmp_path: Path) -> None:
    source, output = tmp_path / "src.csv", tmp_path / "out.csv"
    write_source(source, GOOD_SOURCE_ROWS)
    assert load_build_script().main([str(source), "--output", str(output)]) == 0
    assert output.read_text().splitlines() == [
        "version,released,sha3_256,sha256,withdrawn,note",
        "3.51.0,2025-11-04,"
        + GOOD_SOURCE_ROWS[0]["sha3_256"]
        + ","
        + GOOD_SOURCE_ROWS[0]["sha256"]
        + ",,",
        "3.37.1,2021-12-30,," + GOOD_SOURCE_ROWS[1]["sha256"] + ",,",
    ]


@pytest.mark.parametrize(
    ("row", "changes"),
    [
        (0, {"sha256": "2c37c3678df7" + "0" * 52}),  # the known-wrong 3.51.0 value
        (0, {"sha256": GOOD_SOURCE_ROWS[0]["sha3_256"]}),  # SHA3 recorded as sha256
        (0, {"sha256": GOOD_SOURCE_ROWS[0]["sha256"].upper()}),
        (0, {"sha3_256": GOOD_SOURCE_ROWS[0]["sha3_256"][:63]}),
        (1, {"url": "https://www.sqlite.org/2022/sqlite-autoconf-3370100.tar.gz"}),
        (1, {"url": "https://www.sqlite.org/2021/sqlite-autoconf-3037001.tar.gz"}),
        (1, {"url": "http://www.sqlite.org/2021/sqlite-autoconf-3370100.tar.gz"}),
        (1, {"version": "3.37.1x"}),
        (1, {"released": "2021-13-30"}),
        (1, {"withdrawn": "maybe"}),
        (1, {"version": "3.51.0", "released": "2025-11-04"}),  # duplicate
    ],
)
def test_build_script_refuses_bad_rows(tmp_path: Path, row: int, changes: Dict[str, str]) -> None:
    rows = [dict(r) for r in GOOD_SOURCE_ROWS]
    rows[row].update(changes)
    if "version" in changes and changes["version"] == "3.51.0":
        rows[row]["url"] = GOOD_SOURCE_ROWS[0]["url"]
    source, output = tmp_path / "src.csv", tmp_path / "out.csv"
    write_source(source, rows)
    assert load_build_script().main([str(source), "--output", str(output)]) == 1
    assert not output.exists()


# --------------------------------------------------------------------------------------------
# the download page

AUTOCONF_SHA3_3412 = "1ebb5539dd6fde9a0f89e8ab765af0b9f02010fc6baf6985b54781a38c00020a"
HEADER = "PRODUCT,VERSION,RELATIVE-URL,SIZE-IN-BYTES,SHA3-HASH"
TITLE = "Download product data for scripts to read"


def block_rows(version: str = "3.41.2", year: str = "2023", sha3: str = AUTOCONF_SHA3_3412) -> str:
    number = version_to_number(version)
    lines = [
        "PRODUCT,2023-05-02 16:34 UTC,snapshot/sqlite-snapshot-202305021634.tar.gz,3129342,"
        + fake_hash("snapshot"),
        f"PRODUCT,{version},{year}/sqlite-amalgamation-{number}.zip,2675839,"
        + fake_hash("amalgamation"),
        f"PRODUCT,{version},{year}/sqlite-autoconf-{number}.tar.gz,3125545,{sha3}",
        f"PRODUCT,{version},{year}/sqlite-doc-{number}.zip,10575591," + fake_hash("doc"),
        f"PRODUCT,{version},{year}/sqlite-tools-linux-x86-{number}.zip,2117349,"
        + fake_hash("tools-linux"),
        f"PRODUCT,{version},{year}/sqlite-tools-osx-x86-{number}.zip,1532981,"
        + fake_hash("tools-osx"),
        f"PRODUCT,{version},{year}/sqlite-tools-win32-x86-{number}.zip,1986474,"
        + fake_hash("tools-win"),
        f"PRODUCT,{version},{year}/sqlite-src-{number}.zip,13639322," + fake_hash("src"),
    ]
    return "\n".join(lines)


def download_page(block: str) -> str:
    """A download.html shaped like sqlite.org's, with `block` as the product-data comment."""
    return f"""<!DOCTYPE html>
<html><head>
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<meta http-equiv="content-type" content="text/html; charset=UTF-8">
<link href="sqlite.css" rel="stylesheet">
<title>SQLite Download Page</title>
<!-- path= -->
</head>
<body>
<div class=nosearch>
<a href="index.html"><img class="logo" src="images/sqlite370_banner.svg" alt="SQLite"></a>
<!-- Small, Fast, Reliable. Choose any three. -->
</div>
<h2>SQLite Download Page</h2>
<table width="100%" cellpadding="5" cellspacing="0">
<tr><td colspan="4"><h3>Pre-release Snapshots</h3></td></tr>
<tr><td width="10">&nbsp;&nbsp;</td><td valign="top" align="right">
<a id="a1" href="hp1.html">sqlite-snapshot-202305021634.tar.gz</a></td>
<td>(3.05 MiB)</td><td>The amalgamation source code ...</td></tr>
<tr><td colspan="4"><h3>Source Code</h3></td></tr>
<tr><td width="10">&nbsp;&nbsp;</td><td valign="top" align="right">
<a id="a3" href="hp1.html">sqlite-autoconf-3410200.tar.gz</a></td>
<td>(2.98 MiB)</td><td>C source code as an amalgamation, <!-- not a --> with configure</td></tr>
</table>
<!-- Download product data for scripts to read
{block}
-->
<script type="text/JavaScript">
function d391(h,id){{document.getElementById(id).href=h;}}
</script>
</body></html>
"""


REAL_PAGE = download_page(HEADER + "\n" + block_rows())


def test_parse_download_page_known_release() -> None:
    release = parse_download_page(REAL_PAGE)
    assert release.version == "3.41.2"
    assert release.relative_url == "2023/sqlite-autoconf-3410200.tar.gz"
    assert release.sha3_256 == AUTOCONF_SHA3_3412
    # copied from the catalog
    assert release.released == "2023-03-22"
    assert release.sha256 == "e98c100dd1da4e30fa460761dab7c0b91a50b785e167f8c57acc46514fae9499"
    assert not release.withdrawn
    assert release.url() == "https://www.sqlite.org/2023/sqlite-autoconf-3410200.tar.gz"


def test_parse_download_page_unknown_release_and_extra_columns() -> None:
    sha3 = fake_hash("3.54.0")
    header = HEADER + ",SHA256-HASH,FUTURE"
    rows = "\n".join(
        line + "," + fake_hash("x") + ",whatever"
        for line in block_rows("3.54.0", "2027", sha3).splitlines()
    )
    release = parse_download_page(download_page(header + "\n" + rows).replace("\n", "\r\n"))
    assert release == Release(
        version="3.54.0",
        released="",
        sha3_256=sha3,
        relative_url="2027/sqlite-autoconf-3540000.tar.gz",
    )
    assert release.year == 2027
    assert release.url("https://mirror.example/") == (
        "https://mirror.example/2027/sqlite-autoconf-3540000.tar.gz"
    )


def test_parse_download_page_withdrawn_release_keeps_the_flag() -> None:
    known = find_release("3.52.0")
    assert known is not None and known.sha3_256 is not None
    page = download_page(HEADER + "\n" + block_rows("3.52.0", "2026", known.sha3_256))
    release = parse_download_page(page)
    assert release.withdrawn and release.note == known.note
    assert release.relative_url == "2026/sqlite-autoconf-3520000.tar.gz"


def test_parse_download_page_title_on_its_own_line() -> None:
    page = REAL_PAGE.replace(f"<!-- {TITLE}", f"<!--\n  {TITLE}  ")
    assert parse_download_page(page).version == "3.41.2"


BAD_PAGES = {
    "empty": "",
    "no block": download_page(HEADER + "\n" + block_rows()).replace(TITLE, "Other data"),
    "unterminated": REAL_PAGE.split("-->\n<script")[0],
    "no header": download_page(block_rows()),
    "header without hash": download_page(
        "PRODUCT,VERSION,RELATIVE-URL,SIZE-IN-BYTES\n" + block_rows()
    ),
    "no autoconf row": download_page(
        HEADER + "\n" + block_rows().replace("sqlite-autoconf-", "sqlite-autoconf-src-")
    ),
    "short hash": download_page(HEADER + "\n" + block_rows(sha3=AUTOCONF_SHA3_3412[:-1])),
    "non-hex hash": download_page(HEADER + "\n" + block_rows(sha3="g" + AUTOCONF_SHA3_3412[1:])),
    "missing hash": download_page(
        HEADER + "\n" + block_rows(sha3="").replace("3125545,\n", "3125545\n")
    ),
    "tampered hash": download_page(HEADER + "\n" + block_rows(sha3=fake_hash("evil"))),
    "name and version disagree": download_page(
        HEADER
        + "\n"
        + block_rows().replace(",2023/sqlite-autoconf-3410200", ",2023/sqlite-autoconf-3410100")
    ),
    "absolute url": download_page(
        HEADER
        + "\n"
        + block_rows().replace(
            "2023/sqlite-autoconf-", "https://evil.example/2023/sqlite-autoconf-"
        )
    ),
    "dot-dot url": download_page(
        HEADER + "\n" + block_rows().replace("2023/sqlite-autoconf-", "../2023/sqlite-autoconf-")
    ),
    "long hash": download_page(HEADER + "\n" + block_rows(sha3=AUTOCONF_SHA3_3412 + "0")),
    "NUL in block": download_page(HEADER + "\n" + block_rows(sha3="\x00" + AUTOCONF_SHA3_3412[1:])),
    "huge field": download_page(HEADER + "\n" + block_rows() + "\nPRODUCT," + "9" * 200000),
    "two autoconf rows": download_page(
        HEADER
        + "\n"
        + block_rows()
        + "\nPRODUCT,3.54.0,2027/sqlite-autoconf-3540000.tar.gz,1,"
        + fake_hash("2")
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_PAGES))
def test_bad_download_pages(name: str) -> None:
    with pytest.raises(DownloadError) as info:
        parse_download_page(BAD_PAGES[name])
    assert info.value.message


def test_tampered_hash_names_both_values() -> None:
    with pytest.raises(DownloadError) as info:
        parse_download_page(BAD_PAGES["tampered hash"])
    assert fake_hash("evil") in str(info.value)
    assert AUTOCONF_SHA3_3412 in str(info.value)


def test_uppercase_page_hash_is_normalised() -> None:
    page = download_page(HEADER + "\n" + block_rows(sha3=AUTOCONF_SHA3_3412.upper()))
    assert parse_download_page(page).sha3_256 == AUTOCONF_SHA3_3412


def test_rows_whose_version_is_not_a_version_are_skipped() -> None:
    odd = "PRODUCT,2023-05-02 16:34 UTC,2023/sqlite-autoconf-3410100.tar.gz,1," + fake_hash("s")
    page = download_page(HEADER + "\n" + odd + "\n" + block_rows())
    assert parse_download_page(page).version == "3.41.2"


def test_duplicate_identical_autoconf_rows_are_fine() -> None:
    autoconf = next(line for line in block_rows().splitlines() if "autoconf" in line)
    page = download_page(HEADER + "\n" + block_rows() + "\n" + autoconf)
    assert parse_download_page(page).version == "3.41.2"


# --------------------------------------------------------------------------------------------
# properties

BLOCK_LINES = [f"<!-- {TITLE}", HEADER, *block_rows().splitlines(), "-->"]
FRAGMENTS = [
    *BLOCK_LINES,
    "<!--",
    "-->",
    TITLE,
    "\n",
    "\r\n",
    "\r",
    "\u2028",
    ",",
    '"',
    " ",
    "\x00",
    "PRODUCT",
    "VERSION",
    "RELATIVE-URL",
    "SHA3-HASH",
    "3.41.2",
    "3.8.11.1",
    "2023/",
    "../",
    "sqlite-autoconf-3410200.tar.gz",
    "sqlite-autoconf-9999999.tar.gz",
    AUTOCONF_SHA3_3412,
    AUTOCONF_SHA3_3412.upper(),
    "2023-05-02 16:34 UTC",
    "é",
]

fragment_text = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=40
).map("".join)


@st.composite
def mutated_real_block(draw: st.DrawFn) -> str:
    lines = list(BLOCK_LINES)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        action = draw(st.sampled_from(["drop", "replace", "insert", "cut"]))
        if action == "drop" and len(lines) > 1:
            del lines[index]
        elif action == "replace":
            lines[index] = draw(fragment_text)
        elif action == "insert":
            lines.insert(index, draw(fragment_text))
        else:
            cut = draw(st.integers(min_value=0, max_value=len(lines[index])))
            lines[index] = lines[index][:cut]
    return "<html>\n" + "\n".join(lines) + "\n</html>"


def check_page(text: str) -> None:
    try:
        release = parse_download_page(text)
    except ProvisionError:
        return
    parse_version(release.version)
    assert release.sha3_256 is not None and HEX64.fullmatch(release.sha3_256)
    assert release.relative_url is not None
    assert release.relative_url.endswith("/" + release.tarball_name)
    assert release.url().startswith(DEFAULT_BASE_URL + "/")


PROPERTY_SETTINGS = settings(
    max_examples=300, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(st.text())
def test_parse_download_page_any_text_only_raises_provision_error(text: str) -> None:
    check_page(text)


@PROPERTY_SETTINGS
@given(fragment_text)
def test_parse_download_page_fragments_only_raise_provision_error(text: str) -> None:
    check_page(text)
    check_page(f"<!-- {TITLE}\n{HEADER}\n{text}\n-->")


@PROPERTY_SETTINGS
@given(mutated_real_block())
def test_parse_download_page_mutated_block_only_raises_provision_error(text: str) -> None:
    check_page(text)


@PROPERTY_SETTINGS
@given(st.one_of(st.text(), fragment_text, st.from_regex(r"3\.[0-9]{1,3}\.[0-9]{1,3}(\.[0-9])?")))
def test_parse_version_only_raises_usage_error(text: str) -> None:
    try:
        parts = parse_version(text)
    except UsageError:
        return
    assert ".".join(str(part) for part in parts) == text  # accepted text is canonical
    assert number_to_version(version_to_number(text)) == text


@PROPERTY_SETTINGS
@given(st.text())
def test_number_functions_only_raise_usage_error(text: str) -> None:
    try:
        version = number_to_version(text)
    except UsageError:
        version = None
    if version is not None:
        assert version_to_number(version) == text
    assert version_from_tarball_name(text) is None or text.startswith("sqlite-autoconf-")


def test_catalog_module_imports_only_stdlib() -> None:
    source = Path(catalog.__file__).read_text()
    imports = re.findall(r"^(?:from|import) ([\w.]+)", source, flags=re.MULTILINE)
    allowed = {"csv", "io", "re", "dataclasses", "typing"}
    light = {"sqlite_provision.errors", "sqlite_provision.files", "sqlite_provision.versions"}
    assert set(imports) <= allowed | light
