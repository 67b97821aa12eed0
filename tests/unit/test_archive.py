"""Layer 1: archive.extract on tarballs built here with the tarfile module.

Each hostile tarball starts with a harmless member, so a checker that looked at members one by
one while writing them would leave that member behind: extract must check every member before it
writes anything. A sentinel directory beside dest holds what an escape would overwrite.
"""

# Optional rather than `X | None`: the tool and its tests run on Python 3.7.

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from sqlite_provision.errors import EXIT_DOWNLOAD, DownloadError, UnsafeArchiveError
from sqlite_provision.source import archive

TOP = "sqlite-autoconf-3440200"
SECRET = b"sentinel: must never change\n"

# (name, type, linkname, data, mode)
Member = Tuple[str, bytes, str, Optional[bytes], int]


def member(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    link: str = "",
    data: Optional[bytes] = None,
    mode: int = 0o644,
) -> Member:
    return (name, kind, link, data, mode)


def make_tarball(path: Path, members: List[Member], compression: str = "gz") -> Path:
    with tarfile.open(str(path), f"w:{compression}") as tar:
        for name, kind, link, data, mode in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            info.mode = mode
            info.mtime = 1700000000
            if kind == tarfile.REGTYPE:
                payload = data if data is not None else f"contents of {name}\n".encode()
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                    info.devmajor, info.devminor = 1, 3
                tar.addfile(info)
    return path


def snapshot(base: Path, skip: Tuple[Path, ...]) -> Dict[str, Tuple[str, object]]:
    """Every entry under base (links not followed), except the `skip` subtrees."""
    seen: Dict[str, Tuple[str, object]] = {}
    for dirpath, dirnames, filenames in os.walk(str(base)):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in skip]
        for name in dirnames + filenames:
            path = here / name
            if path in skip:
                continue
            rel = str(path.relative_to(base))
            st = os.lstat(str(path))
            if stat.S_ISLNK(st.st_mode):
                seen[rel] = ("link", os.readlink(str(path)))
            elif stat.S_ISDIR(st.st_mode):
                seen[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                seen[rel] = ("file", path.read_bytes())
    return seen


@pytest.fixture(params=["tar-filter", "no-tar-filter"])
def filters(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run with Python's tar filters, and without them as on Python 3.7, where check_members
    is the only guard."""
    if request.param == "no-tar-filter":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    elif not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python has no tarfile filters")
    return str(request.param)


@pytest.fixture
def area(tmp_path: Path, filters: str) -> Dict[str, Path]:
    """tmp_path/{work/dest, work/sentinel/secret, tarballs/}: dest's neighbours are the sentinel."""
    work = tmp_path / "work"
    dest = work / "dest"
    sentinel = work / "sentinel"
    dest.mkdir(parents=True)
    sentinel.mkdir()
    (sentinel / "secret").write_bytes(SECRET)
    (tmp_path / "tarballs").mkdir()
    return {"base": tmp_path, "work": work, "dest": dest, "sentinel": sentinel}


def test_normal_tree_is_extracted_with_safe_modes(area: Dict[str, Path]) -> None:
    tarball = make_tarball(
        area["base"] / "tarballs" / f"{TOP}.tar.gz",
        [
            member(TOP, tarfile.DIRTYPE, mode=0o755),
            member(f"{TOP}/configure", data=b"#!/bin/sh\nexit 0\n", mode=0o755),
            member(f"{TOP}/sqlite3.c", data=b"int x;\n", mode=0o644),
            member(f"{TOP}/setuid-tool", data=b"x", mode=0o4755),
            member(f"{TOP}/unreadable", data=b"y", mode=0o000),
            member(f"{TOP}/tea", tarfile.DIRTYPE, mode=0o755),
            member(f"{TOP}/tea/README", data=b"tea\n"),
            member(f"{TOP}/tea/link", tarfile.SYMTYPE, link="README"),
            member(f"{TOP}/tea/up", tarfile.SYMTYPE, link="../sqlite3.c"),
        ],
    )
    before = snapshot(area["base"], (area["dest"],))

    top = archive.extract(tarball, area["dest"])

    assert top == area["dest"] / TOP
    assert sorted(os.listdir(str(area["dest"]))) == [TOP]
    assert (top / "configure").read_bytes() == b"#!/bin/sh\nexit 0\n"
    assert (top / "sqlite3.c").read_bytes() == b"int x;\n"
    assert (top / "tea" / "README").read_bytes() == b"tea\n"
    assert os.readlink(str(top / "tea" / "link")) == "README"
    assert (top / "tea" / "up").read_bytes() == b"int x;\n"
    assert os.access(str(top / "configure"), os.X_OK)
    mode = stat.S_IMODE(os.stat(str(top / "setuid-tool")).st_mode)
    assert not mode & (stat.S_ISUID | stat.S_ISGID), oct(mode)
    assert stat.S_IMODE(os.stat(str(top / "unreadable")).st_mode) & 0o600 == 0o600
    assert os.stat(str(top / "sqlite3.c")).st_uid == os.geteuid()
    assert snapshot(area["base"], (area["dest"],)) == before


def test_owner_in_the_archive_is_not_restored(area: Dict[str, Path]) -> None:
    path = area["base"] / "tarballs" / "owned.tar"
    with tarfile.open(str(path), "w") as tar:
        info = tarfile.TarInfo(f"{TOP}/file")
        info.size = 1
        info.uid, info.gid, info.uname, info.gname = 4321, 4321, "nobody-here", "nobody-here"
        tar.addfile(info, io.BytesIO(b"z"))
    top = archive.extract(path, area["dest"])
    assert os.stat(str(top / "file")).st_uid == os.geteuid()


def _hostile_cases(sentinel: Path) -> Dict[str, List[Member]]:
    ok_dir = member(TOP, tarfile.DIRTYPE, mode=0o755)
    ok_file = member(f"{TOP}/configure", data=b"#!/bin/sh\n", mode=0o755)
    first = [ok_dir, ok_file]
    return {
        "dotdot": [*first, member("../x", data=b"escaped")],
        "dotdot-inside-name": [*first, member(f"{TOP}/../../sentinel/secret", data=b"pwned")],
        "absolute-tmp": [*first, member("/tmp/evil", data=b"escaped")],
        "absolute-into-sentinel": [*first, member(str(sentinel / "secret"), data=b"pwned")],
        "symlink-to-etc": [*first, member(f"{TOP}/link", tarfile.SYMTYPE, link="/etc")],
        "symlink-absolute-then-write-through": [
            *first,
            member(f"{TOP}/link", tarfile.SYMTYPE, link=str(sentinel)),
            member(f"{TOP}/link/secret", data=b"pwned"),
        ],
        "symlink-dotdot": [*first, member(f"{TOP}/link", tarfile.SYMTYPE, link="../../x")],
        "symlink-dotdot-then-write-through": [
            *first,
            member(f"{TOP}/link", tarfile.SYMTYPE, link="../../sentinel"),
            member(f"{TOP}/link/secret", data=b"pwned"),
        ],
        # Each link looks inside on its own; together they lead to dest's parent.
        "symlink-chain": [
            *first,
            member(f"{TOP}/up", tarfile.SYMTYPE, link=".."),
            member(f"{TOP}/up/up2", tarfile.SYMTYPE, link=".."),
            member(f"{TOP}/up/up2/sentinel/secret", data=b"pwned"),
        ],
        "hardlink-outside-then-overwrite": [
            *first,
            member(f"{TOP}/hard", tarfile.LNKTYPE, link="../sentinel/secret"),
            member(f"{TOP}/hard", data=b"pwned"),
        ],
        "hardlink-absolute": [
            *first,
            member(f"{TOP}/hard", tarfile.LNKTYPE, link=str(sentinel / "secret")),
        ],
        "hardlink-etc-passwd": [
            *first,
            member(f"{TOP}/passwd", tarfile.LNKTYPE, link="/etc/passwd"),
        ],
        "hardlink-through-symlink": [
            *first,
            member(f"{TOP}/up", tarfile.SYMTYPE, link="."),
            member(f"{TOP}/hard", tarfile.LNKTYPE, link=f"{TOP}/up/../../sentinel/secret"),
        ],
        "char-device": [*first, member(f"{TOP}/null", tarfile.CHRTYPE)],
        "block-device": [*first, member(f"{TOP}/sda", tarfile.BLKTYPE)],
        "fifo": [*first, member(f"{TOP}/pipe", tarfile.FIFOTYPE)],
    }


HOSTILE = sorted(_hostile_cases(Path("/x")))


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_member_is_refused_before_anything_is_written(
    area: Dict[str, Path], case: str
) -> None:
    members = _hostile_cases(area["sentinel"])[case]
    tarball = make_tarball(area["base"] / "tarballs" / f"{TOP}.tar.gz", members)
    before = snapshot(area["base"], (area["dest"],))
    tmp_evil_before = os.path.lexists("/tmp/evil")

    with pytest.raises(UnsafeArchiveError) as caught:
        archive.extract(tarball, area["dest"])

    assert caught.value.exit_code == EXIT_DOWNLOAD
    assert "unsafe tarball" in caught.value.message
    assert caught.value.hint
    # Nothing outside dest changed: the sentinel's bytes, no new file beside dest.
    assert snapshot(area["base"], (area["dest"],)) == before
    assert (area["sentinel"] / "secret").read_bytes() == SECRET
    assert os.path.lexists("/tmp/evil") == tmp_evil_before
    # Checked before written: not even the harmless first members are there.
    assert os.listdir(str(area["dest"])) == []


def test_garbage_bytes_are_a_download_error(area: Dict[str, Path]) -> None:
    path = area["base"] / "tarballs" / f"{TOP}.tar.gz"
    path.write_bytes(b"<html><body>404 Not Found</body></html>\n" + bytes(range(256)) * 4)
    with pytest.raises(DownloadError) as caught:
        archive.extract(path, area["dest"])
    assert caught.value.exit_code == EXIT_DOWNLOAD == 4
    assert not isinstance(caught.value, UnsafeArchiveError)
    assert path.name in caught.value.message
    assert os.listdir(str(area["dest"])) == []


def test_truncated_gzip_is_a_download_error(area: Dict[str, Path]) -> None:
    whole = make_tarball(
        area["base"] / "tarballs" / "whole.tar.gz",
        [member(f"{TOP}/f{i}", data=os.urandom(4096)) for i in range(8)],
    )
    cut = area["base"] / "tarballs" / f"{TOP}.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DownloadError) as caught:
        archive.extract(cut, area["dest"])
    assert caught.value.exit_code == EXIT_DOWNLOAD


@pytest.mark.parametrize(
    "members",
    [
        pytest.param(
            [member("a", tarfile.DIRTYPE), member("a/x"), member("b", tarfile.DIRTYPE)],
            id="two-top-level-dirs",
        ),
        pytest.param([member("a/x"), member("b/y")], id="two-implicit-top-level-dirs"),
        pytest.param([member("README")], id="a-top-level-file"),
        pytest.param([], id="empty"),
    ],
)
def test_not_exactly_one_top_level_directory_is_refused(
    area: Dict[str, Path], members: List[Member]
) -> None:
    tarball = make_tarball(area["base"] / "tarballs" / f"{TOP}.tar.gz", members)
    before = snapshot(area["base"], (area["dest"],))
    with pytest.raises(DownloadError) as caught:
        archive.extract(tarball, area["dest"])
    assert caught.value.exit_code == EXIT_DOWNLOAD
    assert "top-level" in caught.value.message
    assert snapshot(area["base"], (area["dest"],)) == before
