"""The RPM recipe (recipe/rpmspec.py), pure: the name, the recipe of an artifact's metadata, the
rendered spec (the shipped template), the time it carries, and the inputs it refuses."""

from __future__ import annotations

import re
from typing import Any, Dict

import pytest

from sqlite_provision.errors import UsageError
from sqlite_provision.files import package_data
from sqlite_provision.recipe.rpmspec import (
    TEMPLATE,
    changelog_date,
    owned_parent,
    package_name,
    recipe_from_metadata,
    render_spec,
    source_date_epoch,
)

NOV_24_2023 = 1700784000  # the release date of 3.44.2, midnight UTC


def metadata(**changes: Any) -> Dict[str, Any]:
    base: Dict[str, Any] = {
        "version": "3.44.2",
        "prefix": "/opt/sqlite/3.44.2",
        "arch": "x86_64",
        "glibc_min": "2.34",
        "tool_version": "0.1.0",
        "request": {"version": "3.44.2", "cflags": "-O0"},
        "build": {
            "era": "autoconf",
            "configure": ["--prefix=/opt/sqlite/3.44.2", "--enable-fts5"],
            "cflags": "-O2 -DSQLITE_ENABLE_FTS5=1",
            "compile_options": ["ENABLE_FTS5", "THREADSAFE=1"],
        },
    }
    base.update(changes)
    return base


def spec_of(**changes: Any) -> str:
    recipe = recipe_from_metadata(metadata(**changes), source_date_epoch=NOV_24_2023)
    return render_spec(recipe, package_data("templates/" + TEMPLATE).decode("utf-8"))


def directive(spec: str, name: str) -> str:
    found = re.findall(rf"^{re.escape(name)}\s*:?\s+(.*)$", spec, re.M)
    assert len(found) == 1, (name, found)
    return str(found[0])


@pytest.mark.parametrize(
    "version, name",
    [("3.44.2", "sqlite-provision-sqlite3_44_2"), ("3.53.4", "sqlite-provision-sqlite3_53_4"),
     ("3.5.34", "sqlite-provision-sqlite3_5_34"), ("3.8.11.1", "sqlite-provision-sqlite3_8_11_1")],
)  # fmt: skip
def test_the_name_carries_the_version_unambiguously_and_no_dash_digit(
    version: str, name: str
) -> None:
    assert package_name(version) == name
    assert not re.search(r"-[0-9]", name)  # rpm and dnf would read a version into it
    assert name not in ("sqlite", "sqlite-libs", "sqlite-devel", "sqlite3")


def test_the_recipe_of_an_artifacts_metadata() -> None:
    recipe = recipe_from_metadata(metadata(), source_date_epoch=NOV_24_2023)
    assert (recipe.name, recipe.version, recipe.release, recipe.arch) == (
        "sqlite-provision-sqlite3_44_2", "3.44.2", "1", "x86_64",
    )  # fmt: skip
    assert recipe.file_name == "sqlite-provision-sqlite3_44_2-3.44.2-1.x86_64.rpm"
    assert recipe.prefix == "/opt/sqlite/3.44.2" and recipe.own_parent == "/opt/sqlite"
    moved = recipe_from_metadata(metadata(), source_date_epoch=0, prefix="/srv/db/3.44.2")
    assert moved.prefix == "/srv/db/3.44.2" and moved.own_parent == "/srv/db"


@pytest.mark.parametrize(
    "prefix, owned",
    [("/opt/sqlite/3.44.2", "/opt/sqlite"), ("/opt/3.44.2", None), ("/usr/local/3.44.2", None),
     ("/opt/sqlite-3.44.2", None), ("/opt/sqlite/3.44.2/x", None)],
)  # fmt: skip
def test_the_package_owns_the_prefix_root_only_when_it_is_the_tools(
    prefix: str, owned: object
) -> None:
    assert owned_parent(prefix, "3.44.2") == owned


def test_the_spec_filters_every_provide_under_the_prefix_and_keeps_glibc_requires() -> None:
    spec = spec_of()
    assert "%global __provides_exclude_from ^/opt/sqlite/3\\\\.44\\\\.2/.*$" in spec
    # Only libsqlite3 is taken off the automatic Requires; libc.so.6(GLIBC_2.x) stays.
    assert "%global __requires_exclude ^libsqlite3\\\\.so.*$" in spec
    assert "AutoReq" not in spec and "AutoReqProv" not in spec
    assert directive(spec, "Name") == "sqlite-provision-sqlite3_44_2"
    assert directive(spec, "Version") == "3.44.2"
    assert directive(spec, "ExclusiveArch") == "x86_64"
    assert "Provides:" not in spec and "Obsoletes:" not in spec and "Conflicts:" not in spec


def test_the_spec_holds_exactly_the_tree_and_runs_nothing_on_the_host() -> None:
    spec = spec_of()
    files = spec.split("%files\n", 1)[1].split("\n%changelog", 1)[0].split("\n")
    assert [line for line in files if line] == [
        "%defattr(-,root,root,-)", "%dir /opt/sqlite", "/opt/sqlite/3.44.2",
    ]  # fmt: skip
    install = spec.split("%install\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert install == [
        "mkdir -p %{buildroot}/opt/sqlite/3.44.2",
        "cp -a %{_sourcedir}/. %{buildroot}/opt/sqlite/3.44.2/",
        "find %{buildroot} -exec touch -h -d @1700784000 {} +",
    ]
    sections = re.findall(r"^%(\w+)\b", spec, re.M)
    scriptlets = {"pre", "post", "preun", "postun", "pretrans", "posttrans", "triggerin",
                  "triggerun", "triggerpostun", "filetriggerin", "transfiletriggerin"}  # fmt: skip
    assert not scriptlets & set(sections), sections
    assert [s for s in sections if s not in ("global", "defattr", "dir")] == [
        "description", "install", "files", "changelog",
    ]  # fmt: skip


def test_the_spec_sets_every_reproducibility_knob() -> None:
    spec = spec_of()
    for line in ("%global _buildhost sqlite-provision",
                 "%global clamp_mtime_to_source_date_epoch 1",
                 "%global use_source_date_epoch_as_buildtime 1",
                 "%global source_date_epoch_from_changelog 0",
                 "%global _build_id_links none",
                 "%global _binary_payload w9.gzdio",
                 "%global __os_install_post %{nil}",
                 "%global debug_package %{nil}"):  # fmt: skip
        assert line + "\n" in spec, line
    assert "touch -h -d @1700784000 " in spec
    assert "* Fri Nov 24 2023 sqlite-provision - 3.44.2-1\n" in spec


def test_build_text_cannot_become_a_macro_or_a_section() -> None:
    spec = spec_of(build={"cflags": "-O2 -DX=%{_tmppath}\n%post\n/bin/rm -rf /", "era": "x"})
    assert "CFLAGS: -O2 -DX=%%{_tmppath} %%post /bin/rm -rf /\n" in spec
    assert "\n%post" not in spec


@pytest.mark.parametrize(
    "field, value",
    [("prefix", "/opt/my sqlite/3.44.2"), ("prefix", "/opt/%{_bindir}/3.44.2"),
     ("prefix", "opt/sqlite"), ("prefix", "/opt/sqlite/*"), ("version", "3.44.2-1"),
     ("version", "latest"), ("arch", "x86_64\nProvides: libsqlite3.so.0()(64bit)")],
)  # fmt: skip
def test_values_an_rpm_spec_would_misread_are_refused(field: str, value: str) -> None:
    with pytest.raises(UsageError, match="cannot go into an RPM spec"):
        recipe_from_metadata(metadata(**{field: value}), source_date_epoch=0)


def test_the_time_is_the_release_date_unless_source_date_epoch_is_given() -> None:
    assert source_date_epoch("2023-11-24") == NOV_24_2023
    assert source_date_epoch("2023-11-24", "1234") == 1234
    assert changelog_date(NOV_24_2023) == "Fri Nov 24 2023"
    assert changelog_date(0) == "Thu Jan 01 1970"
    for bad in ("soon", "-5"):
        with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
            source_date_epoch("2023-11-24", bad)
    with pytest.raises(UsageError, match="no release date"):
        source_date_epoch(None)


def test_every_catalog_release_gets_a_spec_of_its_own_that_provides_nothing() -> None:
    """The package recipe of every release in the catalog (not only the shared tarballs'): a
    distinct name with its version, the version's own prefix excluded from Provides, glibc
    Requires kept, the release date as its time, and no scriptlet. The real build, rpm -qp and
    the install run on the shared tarballs' two eras (tests/integration/test_rpm*.py)."""
    from sqlite_provision.source.catalog import load_catalog

    names = set()
    for release in load_catalog():
        v = release.version
        prefix = f"/opt/sqlite/{v}"
        epoch = source_date_epoch(release.released)
        recipe = recipe_from_metadata(metadata(version=v, prefix=prefix), source_date_epoch=epoch)
        spec = render_spec(recipe, package_data("templates/" + TEMPLATE).decode("utf-8"))
        assert directive(spec, "Name") == package_name(v) and directive(spec, "Version") == v
        escaped = re.escape(prefix).replace("\\/", "/").replace("\\", "\\\\")
        assert f"%global __provides_exclude_from ^{escaped}/.*$" in spec, v
        assert "%global __requires_exclude ^libsqlite3\\\\.so.*$" in spec, v
        assert "Provides:" not in spec and "%post" not in spec and "%pre" not in spec, v
        names.add(recipe.name)
    assert len(names) == len(load_catalog()) > 80  # 3.24.0 to 3.53.4
