"""The pure-Python .dynsym reader against two independent readers: binutils' readelf and
pyelftools, on the host's real libsqlite3 and on a library compiled here."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sqlite_provision.host.elf import ElfError, exported_functions, parse_exported_functions
from sqlite_provision.host.library import system_library
from sqlite_provision.recipe.features import provider_of, public_symbols
from sqlite_provision.runner import Runner
from support import need


def readelf_functions(path: Path) -> set:
    out = subprocess.run(
        ["readelf", "-W", "--dyn-syms", str(path)], capture_output=True, text=True, check=True
    ).stdout
    names = set()
    for line in out.splitlines():
        f = line.split()
        if (
            len(f) >= 8
            and f[3] in ("FUNC", "IFUNC")
            and f[4] in ("GLOBAL", "WEAK")
            and f[5] in ("DEFAULT", "PROTECTED")
            and f[6] != "UND"
        ):
            names.add(f[7].split("@")[0])
    return names


def pyelftools_functions(path: Path) -> set:
    elffile = pytest.importorskip("elftools.elf.elffile")
    names = set()
    with path.open("rb") as fh:
        elf = elffile.ELFFile(fh)
        dynsym = elf.get_section_by_name(".dynsym")
        for sym in dynsym.iter_symbols():
            if (
                sym["st_info"]["type"] in ("STT_FUNC", "STT_LOOS")
                and sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")
                and sym["st_other"]["visibility"] in ("STV_DEFAULT", "STV_PROTECTED")
                and sym["st_shndx"] != "SHN_UNDEF"
            ):
                names.add(sym.name)
    return names


@pytest.fixture(scope="module")
def host_lib() -> Path:
    path = system_library(Runner(os.environ))
    need(path, "a system libsqlite3 is missing")
    return Path(str(path))


@pytest.fixture(scope="module")
def small_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    need(cc, "a C compiler is missing")
    d = tmp_path_factory.mktemp("elf")
    (d / "x.c").write_text(
        "int sqlite3_visible(void){return 1;}\n"
        '__attribute__((visibility("hidden"))) int sqlite3_hidden(void){return 2;}\n'
        "static int sqlite3_static(void){return 3;}\n"
        "int sqlite3_uses(void){return sqlite3_static()+sqlite3_hidden();}\n"
        "__attribute__((weak)) int sqlite3_weak(void){return 4;}\n"
        "int sqlite3_data = 5;\n"
        'extern int puts(const char*); int sqlite3_calls(void){return puts("x");}\n'
    )
    subprocess.run([str(cc), "-shared", "-fPIC", "-o", str(d / "libx.so"), str(d / "x.c")],
                   check=True)  # fmt: skip
    return d / "libx.so"


def test_host_library_matches_readelf(host_lib: Path) -> None:
    need(shutil.which("readelf"), "readelf (binutils) is missing")
    ours = exported_functions(host_lib)
    assert len(ours) > 200
    assert ours == readelf_functions(host_lib)


def test_host_library_matches_pyelftools(host_lib: Path) -> None:
    assert exported_functions(host_lib) == pyelftools_functions(host_lib)


def test_visibility_binding_and_kind(small_lib: Path) -> None:
    names = exported_functions(small_lib)
    assert {"sqlite3_visible", "sqlite3_uses", "sqlite3_weak", "sqlite3_calls"} <= names
    assert "sqlite3_hidden" not in names  # hidden visibility
    assert "sqlite3_static" not in names  # local binding
    assert "sqlite3_data" not in names  # an object, not a function
    assert "puts" not in names  # undefined: imported, not exported


def test_not_elf_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ElfError):
        parse_exported_functions(b"#!/bin/sh\necho hi\n" * 10)
    with pytest.raises(ElfError):
        parse_exported_functions(b"\x7fELF\x02\x01" + b"\0" * 10)


def test_truncated_elf_is_refused(host_lib: Path) -> None:
    data = host_lib.read_bytes()
    with pytest.raises(ElfError):
        parse_exported_functions(data[:80])


def test_public_api_filter_and_providers() -> None:
    names = {
        "sqlite3_open",
        "sqlite3session_create",
        "sqlite3changeset_apply",
        "sqlite3rebaser_create",
        "sqlite3BtreeOpen",  # internal
        "sqlite3changegroup_new",
        "malloc",
    }
    assert public_symbols(names) == {
        "sqlite3_open",
        "sqlite3session_create",
        "sqlite3changeset_apply",
        "sqlite3rebaser_create",
        "sqlite3changegroup_new",
    }
    assert provider_of("sqlite3_column_table_name") == "ENABLE_COLUMN_METADATA"
    assert provider_of("sqlite3_column_table_name16") == "ENABLE_COLUMN_METADATA"
    assert provider_of("sqlite3_unlock_notify") == "ENABLE_UNLOCK_NOTIFY"
    assert provider_of("sqlite3_rtree_geometry_callback") == "ENABLE_RTREE"
    assert provider_of("sqlite3_preupdate_hook") == "ENABLE_PREUPDATE_HOOK"
    assert provider_of("sqlite3session_create") == "ENABLE_SESSION"
    assert provider_of("sqlite3_open") is None
