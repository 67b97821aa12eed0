"""The options a later release builds in (recipe/obsolete.py): the table, how the ABI gate judges
an option the new library cannot list, and what `--compat host` passes for them.

The table against the real sources (what each release's PRAGMA compile_options can list) and
against real libraries is in tests/integration/test_obsolete_options_real_libraries.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Set, Tuple

import pytest

from sqlite_provision.config import Options
from sqlite_provision.host.library import SystemLibrary
from sqlite_provision.plan.build import build_plan
from sqlite_provision.recipe.features import FEATURES, select, system_features
from sqlite_provision.recipe.obsolete import OBSOLETE, built_in, judge, proofs_for
from sqlite_provision.steps.build import Configure
from sqlite_provision.steps.gate import AbiGate
from support.plans import make_facts, resolution_for, steps_of

JSON_PROVED = {"ENABLE_JSON1": (True, "'{}'")}
NO_JSON = {"ENABLE_JSON1": (False, "RuntimeError: SELECT json('{}'): no such function: json")}


# --- the table ------------------------------------------------------------------------------------


def test_the_build_side_and_the_gate_read_the_same_releases() -> None:
    """features.py's `until` (the flag is no longer passed) is the table's `since` (the gate no
    longer expects the option listed), and each such feature has a proof."""
    with_until = {o: f.until for o, f in FEATURES.items() if f.until is not None}
    assert with_until == {
        "ENABLE_JSON1": (3, 38, 0),
        "ENABLE_DESERIALIZE": (3, 36, 0),
    }
    for option, until in with_until.items():
        assert OBSOLETE[option].since == until
        assert OBSOLETE[option].proof is not None
    for row in OBSOLETE.values():
        if row.option in FEATURES:
            assert FEATURES[row.option].until == row.since
            assert row.proof is not None and row.capability and row.omit


def test_stat3_is_in_the_table_but_never_compared() -> None:
    """A no-op since 3.30.0 with nothing left to prove; not a feature option, so host_features
    (what the gate compares) drops it."""
    row = OBSOLETE["ENABLE_STAT3"]
    assert row.since == (3, 30, 0) and row.proof is None
    assert system_features(["ENABLE_STAT3", "ENABLE_FTS5"]) == ["ENABLE_FTS5"]


def test_proofs_for_only_obsolete_options_with_a_proof() -> None:
    proofs = proofs_for(["ENABLE_FTS5", "ENABLE_JSON1", "ENABLE_STAT3", "ENABLE_DESERIALIZE"])
    assert sorted(proofs) == ["ENABLE_DESERIALIZE", "ENABLE_JSON1"]
    assert proofs["ENABLE_JSON1"].query == "SELECT json('{}')"
    assert proofs["ENABLE_JSON1"].expected == "{}"
    assert proofs["ENABLE_DESERIALIZE"].serialize
    assert proofs_for(["ENABLE_FTS5", "THREADSAFE"]) == {}


# --- judge: kept when listed, or when built in AND proved ----------------------------------------


def test_an_option_the_new_library_lists_is_kept_without_words() -> None:
    judged = judge(["ENABLE_FTS5", "ENABLE_FTS3"], (3, 44, 2), ["ENABLE_FTS3=1", "ENABLE_FTS5"], {})
    assert judged.kept == () and judged.lost == () and judged.omitted == ()


def test_json1_is_kept_as_built_in_json_when_proved_at_or_after_3_38() -> None:
    for version in [(3, 38, 0), (3, 44, 2), (3, 52, 0)]:
        judged = judge(["ENABLE_JSON1"], version, ["THREADSAFE=1"], JSON_PROVED)
        assert judged.lost == ()
        assert judged.kept == (
            "ENABLE_JSON1 kept as built-in JSON (built in from 3.38.0), proved: "
            "SELECT json('{}') gives '{}'",
        )


@pytest.mark.parametrize(
    "version, proved",
    [
        pytest.param((3, 37, 2), JSON_PROVED, id="before-3.38-even-if-proved"),
        pytest.param((3, 33, 0), {}, id="before-3.38-unproved"),
    ],
)
def test_json1_missing_before_3_38_is_lost_by_name(
    version: Tuple[int, ...],
    proved: dict,  # type: ignore[type-arg]
) -> None:
    judged = judge(["ENABLE_JSON1"], version, ["THREADSAFE=1"], proved)
    assert judged.kept == () and judged.lost == ("ENABLE_JSON1",)


def test_json_compiled_out_is_lost_naming_json_and_the_omit_option() -> None:
    judged = judge(["ENABLE_JSON1", "ENABLE_FTS5"], (3, 44, 2), ["OMIT_JSON"], NO_JSON)
    assert judged.kept == ()
    assert judged.lost == (
        "ENABLE_JSON1 (no built-in JSON, built in from 3.38.0: SELECT json('{}') gives "
        "RuntimeError: SELECT json('{}'): no such function: json)",
        "ENABLE_FTS5",
    )
    assert judged.omitted == ("OMIT_JSON",)


def test_an_obsolete_option_whose_proof_did_not_run_is_lost() -> None:
    judged = judge(["ENABLE_DESERIALIZE"], (3, 44, 2), [], {})
    assert judged.kept == ()
    assert judged.lost == (
        "ENABLE_DESERIALIZE (no built-in sqlite3_serialize and sqlite3_deserialize, built in "
        "from 3.36.0: SELECT x FROM t on a database copied by sqlite3_serialize and "
        "sqlite3_deserialize gives nothing: it was not run)",
    )


# --- --compat host never passes a flag the release builds in --------------------------------------

OBSOLETE_HOST = ["ENABLE_COLUMN_METADATA", "ENABLE_JSON1", "ENABLE_DESERIALIZE", "THREADSAFE=1"]


def chosen(version: Tuple[int, ...]) -> List[str]:
    return [s.feature.option for s in select("host", version, OBSOLETE_HOST)]


@pytest.mark.parametrize("version", [(3, 38, 0), (3, 44, 2), (3, 52, 0)])
def test_compat_host_drops_both_flags_from_3_38(version: Tuple[int, ...]) -> None:
    assert "ENABLE_JSON1" not in chosen(version)
    assert "ENABLE_DESERIALIZE" not in chosen(version)
    assert "ENABLE_COLUMN_METADATA" in chosen(version)


def test_compat_host_adds_each_flag_to_a_release_before_its_change() -> None:
    assert {"ENABLE_JSON1", "ENABLE_DESERIALIZE"} <= set(chosen((3, 33, 0)))
    between = chosen((3, 37, 2))  # DESERIALIZE built in from 3.36.0, JSON1 from 3.38.0
    assert "ENABLE_JSON1" in between and "ENABLE_DESERIALIZE" not in between
    origins = {s.feature.option: s.origin for s in select("host", (3, 33, 0), OBSOLETE_HOST)}
    assert origins["ENABLE_DESERIALIZE"] == "host library"


def plan_steps(version: str, tmp_path: Path) -> Tuple[Configure, AbiGate]:
    options = Options(
        version=version,
        allow_withdrawn=True,
        prefix_root=tmp_path / "opt",
        profile_file=tmp_path / "profile.d" / "sqlite-provision.sh",
    )
    system_lib = SystemLibrary(
        "/usr/lib64/libsqlite3.so.0.8.6",
        "3.34.1",
        tuple(OBSOLETE_HOST),
        frozenset({"sqlite3_open", "sqlite3_column_table_name"}),
    )
    plan = build_plan(
        resolution_for(options, make_facts(), tmp_path / "work", system_lib=system_lib)
    )
    [configure] = [s for s in steps_of(plan) if isinstance(s, Configure)]
    [gate] = [s for s in steps_of(plan) if isinstance(s, AbiGate)]
    return configure, gate


@pytest.mark.parametrize("version", ["3.44.2", "3.52.0"])
def test_the_plan_of_a_recent_release_has_no_obsolete_flag_and_proves_instead(
    version: str, tmp_path: Path
) -> None:
    configure, gate = plan_steps(version, tmp_path)
    cflags = configure.config.cflags
    assert "-DSQLITE_ENABLE_COLUMN_METADATA=1" in cflags
    assert "-DSQLITE_ENABLE_JSON1" not in cflags and "-DSQLITE_ENABLE_DESERIALIZE" not in cflags
    shown = " ".join(" ".join(argv) for argv in configure.commands()) + configure.describe()
    assert "ENABLE_JSON1" not in shown and "ENABLE_DESERIALIZE" not in shown
    [argv] = gate.commands()
    assert '"ENABLE_JSON1"' in argv[-1] and '"ENABLE_DESERIALIZE"' in argv[-1]


def test_the_plan_of_an_old_release_passes_both_flags(tmp_path: Path) -> None:
    configure, _ = plan_steps("3.33.0", tmp_path)
    assert "-DSQLITE_ENABLE_JSON1=1" in configure.config.cflags
    assert "-DSQLITE_ENABLE_DESERIALIZE=1" in configure.config.cflags


# --- what a host from 3.38.0 on has without listing it ---------------------------------------------


def test_built_in_is_what_the_host_release_has_without_listing_it() -> None:
    assert built_in((3, 34, 1), ["ENABLE_JSON1"]) == []  # RHEL 9: it lists what it has
    assert built_in((3, 37, 2), []) == ["ENABLE_DESERIALIZE"]
    assert built_in((3, 40, 0), ["ENABLE_FTS5"]) == ["ENABLE_JSON1", "ENABLE_DESERIALIZE"]
    assert built_in((3, 46, 1), ["OMIT_JSON", "OMIT_DESERIALIZE"]) == []  # compiled out of it
    assert built_in((), []) == []  # an unreadable version: nothing is assumed


@pytest.mark.parametrize(
    "version, options, proved",
    [
        ("3.46.1", ("ENABLE_FTS5",), {"ENABLE_JSON1", "ENABLE_DESERIALIZE"}),
        ("3.46.1", ("ENABLE_FTS5", "OMIT_JSON"), {"ENABLE_DESERIALIZE"}),
        ("3.34.1", ("ENABLE_FTS5",), set()),
        ("3.34.1", ("ENABLE_FTS5", "ENABLE_JSON1"), {"ENABLE_JSON1"}),
    ],
)
def test_the_gate_proves_what_the_host_has_built_in(
    version: str, options: Tuple[str, ...], proved: Set[str]
) -> None:
    """RHEL 10's 3.46.1 lists neither option but has both capabilities: the new library must
    prove both (a build with SQLITE_OMIT_JSON would take json() from its programs)."""
    system_lib = SystemLibrary(
        "/usr/lib64/libsqlite3.so.0", version, options, frozenset({"sqlite3_open"})
    )
    gate = AbiGate(system_lib, False, Path("/new/lib/libsqlite3.so.0"))
    [argv] = gate.commands()
    assert set(json.loads(argv[4]) if len(argv) > 4 else {}) == proved
    assert set(gate.compared()) == {"ENABLE_FTS5"} | proved
