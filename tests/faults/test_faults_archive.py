"""Hostile and broken tarballs, each with a correct user-supplied --sha256, served by the
mirror (--url) or given as a file (--tarball): refused with exit 4 before anything is written
outside the build directory, which is removed. A tarball downloaded with --url and verified
against the --sha256 given may stay in the cache (a complete, verified file)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Tuple

import pytest

from support.faults import (
    TARBALL_3442,
    FaultHost,
    expect,
    sha256_bytes,
    tar_dir,
    tar_file,
    tar_symlink,
    tarball_bytes,
)
from support.mirror import Mirror

TOP = "sqlite-autoconf-3440200"

Members = Callable[[Path], List[Tuple[object, bytes]]]


def dotdot(outside: Path) -> list:  # type: ignore[type-arg]
    # The build dir is TMPDIR/sqlite-provision-build-XXXX: TOP/../../../ is TMPDIR's parent.
    return [
        tar_dir(TOP),
        tar_file(f"{TOP}/configure", b"#!/bin/sh\nexit 0\n"),
        tar_file(f"{TOP}/../../../{outside.name}/dotdot-escaped.txt", b"escaped\n"),
    ]


def absolute(outside: Path) -> list:  # type: ignore[type-arg]
    return [
        tar_dir(TOP),
        tar_file(f"{TOP}/configure", b"#!/bin/sh\nexit 0\n"),
        tar_file(f"{outside}/absolute-escaped.txt", b"escaped\n"),
    ]


def symlink(outside: Path) -> list:  # type: ignore[type-arg]
    return [
        tar_dir(TOP),
        tar_symlink(f"{TOP}/outside", str(outside)),
        tar_file(f"{TOP}/outside/symlink-escaped.txt", b"escaped\n"),
    ]


HOSTILE: Dict[str, Members] = {"../": dotdot, "absolute path": absolute, "symlink outside": symlink}


def deliver(
    how: str, data: bytes, host: FaultHost, mirror: Mirror, tmp_path: Path
) -> Tuple[List[str], List[str]]:
    """(install args, sha256s that may stay in the cache) for --url or --tarball."""
    digest = sha256_bytes(data)
    if how == "url":
        url = mirror.add(f"/evil/{TARBALL_3442}", data)
        return ["--url", url, "--sha256", digest], [digest]
    local = tmp_path / "given" / TARBALL_3442
    local.parent.mkdir()
    local.write_bytes(data)
    return ["--tarball", str(local), "--sha256", digest], []


@pytest.mark.parametrize("how", ["url", "tarball"])
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_tarball_is_refused_before_writing_outside(
    host: FaultHost, mirror: Mirror, tmp_path: Path, kind: str, how: str
) -> None:
    outside = host.root / "outside"  # beside the host's TMPDIR
    outside.mkdir()
    data = tarball_bytes(HOSTILE[kind](outside))  # type: ignore[arg-type]
    args, verified = deliver(how, data, host, mirror, tmp_path)
    with host.fault(f"tarball with {kind} (via --{how})", verified=verified) as case:
        run = host.run(*args)
    expect(run, 4, "unsafe tarball", "not an sqlite.org tarball")
    assert run.step("extract")["status"] == "failed", run.describe()
    assert list(outside.iterdir()) == []
    assert list(host.tmp.iterdir()) == []  # the build dir is gone, nothing landed in TMPDIR
    assert case.changes == {}, case.describe()


@pytest.mark.parametrize("how", ["url", "tarball"])
def test_not_a_tarball_with_a_valid_checksum(
    host: FaultHost, mirror: Mirror, tmp_path: Path, how: str
) -> None:
    data = b"<html>this is not a tarball, but its checksum is right</html>\n" * 64
    args, verified = deliver(how, data, host, mirror, tmp_path)
    with host.fault(f"not a tarball, valid checksum (via --{how})", verified=verified) as case:
        run = host.run(*args)
    expect(run, 4, "not a readable tar archive", "sqlite-autoconf tarball")
    assert list(host.tmp.iterdir()) == []
    assert case.changes == {}, case.describe()
