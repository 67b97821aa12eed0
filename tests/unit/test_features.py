"""Feature selection for --compat and --enable, and how --dry-run shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sqlite_provision.errors import UsageError
from sqlite_provision.recipe.features import RHEL_BASELINE, normalize, select

DEBIAN_OPTIONS = [
    "COMPILER=gcc-12.2.0", "ENABLE_COLUMN_METADATA", "ENABLE_FTS3_TOKENIZER", "ENABLE_SESSION",
    "ENABLE_PREUPDATE_HOOK", "MAX_VARIABLE_NUMBER=250000", "SOUNDEX", "THREADSAFE=1",
]  # fmt: skip


def origins(compat: str, system_options=(), enable=(), version=(3, 53, 4)):  # type: ignore[no-untyped-def]
    return {s.feature.option: s.origin for s in select(compat, version, system_options, enable)}


def test_host_adds_the_system_librarys_features_to_the_baseline() -> None:
    chosen = origins("host", DEBIAN_OPTIONS)
    for option in RHEL_BASELINE:
        if option != "ENABLE_JSON1":  # built in from 3.38
            assert chosen[option] == "rhel baseline"
    assert chosen["ENABLE_SESSION"] == "host library"
    assert chosen["ENABLE_FTS3_TOKENIZER"] == "host library"
    assert "ENABLE_JSON1" not in chosen
    # Values such as limits and the compiler are not feature options.
    assert "MAX_VARIABLE_NUMBER" not in chosen and "COMPILER" not in chosen


def test_rhel_ignores_the_host_and_none_is_empty() -> None:
    assert "ENABLE_SESSION" not in origins("rhel", DEBIAN_OPTIONS)
    assert origins("none", DEBIAN_OPTIONS) == {}


def test_enable_and_requirements() -> None:
    chosen = origins("none", enable=["session"])
    assert chosen == {
        "ENABLE_SESSION": "--enable",
        "ENABLE_PREUPDATE_HOOK": "required by ENABLE_SESSION",
    }
    assert origins("none", enable=["-DSQLITE_ENABLE_GEOPOLY=1"])["ENABLE_RTREE"].startswith(
        "required"
    )
    assert "ENABLE_JSON1" in origins("rhel", version=(3, 37, 2))


@pytest.mark.parametrize("name", ["SESSION", "session", "ENABLE_SESSION", "SQLITE_ENABLE_SESSION",
                                  "enable-session"])  # fmt: skip
def test_normalize_spellings(name: str) -> None:
    assert normalize(name) == "ENABLE_SESSION"


def test_unknown_option_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as info:
        normalize("ENABLE_WARP_DRIVE")
    assert "known options" in str(info.value.hint)
    with pytest.raises(UsageError):
        select("hosty", (3, 53, 4))


def test_dry_run_shows_each_option_and_its_origin(tmp_path: Path) -> None:
    env = dict(os.environ, SQLITE_PROVISION_LOCK_FILE=str(tmp_path / "lock"),
               SQLITE_PROVISION_CACHE_DIR=str(tmp_path / "cache"),
               SQLITE_PROVISION_LOG_DIR=str(tmp_path / "log"))  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "sqlite_provision", "install", "--dry-run", "--json",
         "--prefix-root", str(tmp_path / "opt"), "--profile-file", str(tmp_path / "p.sh"),
         "--enable", "geopoly", "--python", sys.executable],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    features = {f["option"]: f["origin"] for f in json.loads(out)["features"]}
    assert features["ENABLE_GEOPOLY"] == "--enable"
    assert features["ENABLE_COLUMN_METADATA"] == "rhel baseline"
    steps = {s["name"]: s for s in json.loads(out)["steps"]}
    configure, probe = steps["configure"], steps["probe-configure"]
    assert "-DSQLITE_ENABLE_GEOPOLY=1" in configure["description"]
    assert (
        probe["commands"][0].endswith(" -- ./configure --help")
        or probe["commands"][0] == "./configure --help"
    )
    assert "--geopoly" in configure["commands"][0]
    assert not (tmp_path / "opt").exists() and not (tmp_path / "log").exists()


def test_options_the_amalgamation_cannot_have_are_not_claimed() -> None:
    """ENABLE_UPDATE_DELETE_LIMIT: the tarball's parser is pre-generated, so the flag would be
    listed by PRAGMA compile_options while DELETE ... LIMIT stays a syntax error (measured)."""
    from sqlite_provision.recipe.features import unbuildable_system_features

    system_options = [*DEBIAN_OPTIONS, "ENABLE_UPDATE_DELETE_LIMIT"]
    assert "ENABLE_UPDATE_DELETE_LIMIT" not in origins("host", system_options)
    assert unbuildable_system_features(system_options) == ["ENABLE_UPDATE_DELETE_LIMIT"]
    with pytest.raises(UsageError) as info:
        select("none", (3, 53, 4), enable=["UPDATE_DELETE_LIMIT"])
    assert "pre-generated" in info.value.message
