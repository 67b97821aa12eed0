"""SQLite feature options: the -D flag and configure option of each, and the API it exports.

This table drives three things: the compatible build (`--compat host` carries every feature the
host library has), the ABI gate (a symbol the host exports but the new library lacks names the
option that provides it), and `--enable OPTION`.
"""

import re
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, List, Optional, Tuple

from sqlite_provision.errors import UsageError
from sqlite_provision.recipe import COMPAT_MODES
from sqlite_provision.recipe.obsolete import obsolete_since


@dataclass(frozen=True)
class Feature:
    option: str  # as `PRAGMA compile_options` shows it, e.g. "ENABLE_SESSION"
    value: str = "1"
    autosetup: Tuple[str, ...] = ()  # configure options of the autosetup era (>= 3.49)
    autoconf: Tuple[str, ...] = ()  # configure options of the autoconf era (<= 3.48)
    symbols: Tuple[str, ...] = ()  # exported names (or name prefixes ending in "_") it adds
    requires: Tuple[str, ...] = ()
    # Built in (the flag obsolete, PRAGMA compile_options silent about it) from this version:
    # recipe/obsolete.py, where the ABI gate finds how to prove the capability instead.
    until: Optional[Tuple[int, ...]] = None
    # False where the sqlite-autoconf amalgamation cannot provide it: its SQL parser is
    # pre-generated, so the flag shows in PRAGMA compile_options while the syntax stays refused.
    amalgamation: bool = True

    @property
    def define(self) -> str:
        return f"-DSQLITE_{self.option}={self.value}"

    def applies_to(self, version: Tuple[int, ...]) -> bool:
        return self.until is None or version < self.until


_FEATURES = (
    Feature(
        "ENABLE_COLUMN_METADATA",
        symbols=(
            "sqlite3_column_table_name",
            "sqlite3_column_database_name",
            "sqlite3_column_origin_name",
        ),
    ),
    Feature("DISABLE_DIRSYNC"),
    Feature("ENABLE_FTS3", autosetup=("--fts3",), autoconf=("--enable-fts3",)),
    Feature("ENABLE_FTS3_PARENTHESIS", requires=("ENABLE_FTS3",)),
    Feature("ENABLE_FTS3_TOKENIZER", requires=("ENABLE_FTS3",)),
    Feature("ENABLE_FTS4", autosetup=("--fts4",), autoconf=("--enable-fts4",)),
    Feature("ENABLE_FTS5", autosetup=("--fts5",), autoconf=("--enable-fts5",)),
    Feature(
        "ENABLE_RTREE",
        autosetup=("--rtree",),
        autoconf=("--enable-rtree",),
        symbols=("sqlite3_rtree_",),
    ),
    Feature("ENABLE_GEOPOLY", autosetup=("--geopoly",), requires=("ENABLE_RTREE",)),
    Feature("ENABLE_PREUPDATE_HOOK", symbols=("sqlite3_preupdate_",)),
    Feature(
        "ENABLE_SESSION",
        autosetup=("--session",),
        autoconf=("--enable-session",),
        symbols=("sqlite3session_", "sqlite3changeset_", "sqlite3changegroup_", "sqlite3rebaser_"),
        requires=("ENABLE_PREUPDATE_HOOK",),
    ),
    Feature("ENABLE_UNLOCK_NOTIFY", symbols=("sqlite3_unlock_notify",)),
    Feature("ENABLE_DBSTAT_VTAB", autosetup=("--dbstat",)),
    Feature("ENABLE_DBPAGE_VTAB", autosetup=("--dbpage",)),
    Feature("ENABLE_STMTVTAB"),
    Feature("ENABLE_BYTECODE_VTAB"),
    Feature("ENABLE_MATH_FUNCTIONS", autoconf=("--enable-math",)),
    Feature("ENABLE_JSON1", until=obsolete_since("ENABLE_JSON1")),
    Feature("ENABLE_SNAPSHOT", symbols=("sqlite3_snapshot_",)),
    Feature("ENABLE_STMT_SCANSTATUS", symbols=("sqlite3_stmt_scanstatus",)),
    Feature("ENABLE_NORMALIZE", symbols=("sqlite3_normalized_sql",)),
    Feature(
        "ENABLE_DESERIALIZE",
        symbols=("sqlite3_serialize", "sqlite3_deserialize"),
        until=obsolete_since("ENABLE_DESERIALIZE"),
    ),
    # Measured: 3.44.2 and 3.52.0 (even with autosetup's --update-limit) list the option and
    # still answer `DELETE FROM t LIMIT 1` with a syntax error; Debian builds from the full tree.
    Feature("ENABLE_UPDATE_DELETE_LIMIT", amalgamation=False),
    Feature("ENABLE_OFFSET_SQL_FUNC"),
    Feature("ENABLE_PERCENTILE"),
    Feature("ENABLE_CARRAY", symbols=("sqlite3_carray_bind",)),
    Feature("ENABLE_SORTER_REFERENCES"),
    Feature("ENABLE_EXPLAIN_COMMENTS"),
    Feature("ENABLE_API_ARMOR"),
    Feature("ENABLE_NULL_TRIM"),
    Feature("SECURE_DELETE"),
    Feature("SOUNDEX"),
    Feature("USE_URI"),
    Feature("LIKE_DOESNT_MATCH_BLOBS"),
)
FEATURES: Dict[str, Feature] = {f.option: f for f in _FEATURES}

# Red Hat's sqlite.spec for RHEL 8/9 (reference README), plus FTS4/FTS5 which RHEL enables through
# configure.
RHEL_BASELINE = (
    "ENABLE_COLUMN_METADATA",
    "DISABLE_DIRSYNC",
    "ENABLE_FTS3",
    "ENABLE_FTS4",
    "ENABLE_FTS5",
    "ENABLE_RTREE",
    "SECURE_DELETE",
    "ENABLE_UNLOCK_NOTIFY",
    "ENABLE_DBSTAT_VTAB",
    "ENABLE_FTS3_PARENTHESIS",
    "ENABLE_JSON1",
)

# The public API a library exports: what programs linked to the system library may call.
PUBLIC_SYMBOL = re.compile(
    r"^(sqlite3_|sqlite3session_|sqlite3changeset_|sqlite3changegroup_|sqlite3rebaser_)"
)


@dataclass(frozen=True)
class Selected:
    feature: Feature
    origin: str  # "rhel baseline" | "host library" | "--enable" | "required by X"


def normalize(name: str) -> str:
    """Accept ENABLE_SESSION, SQLITE_ENABLE_SESSION, session, enable-session, SOUNDEX ..."""
    key = name.strip().upper()
    if key.startswith("-D"):
        key = key[len("-D") :]
    key = key.replace("-", "_")
    if key.startswith("SQLITE_"):
        key = key[len("SQLITE_") :]
    key = key.split("=", 1)[0]
    if key in FEATURES:
        return key
    if "ENABLE_" + key in FEATURES:
        return "ENABLE_" + key
    raise UsageError(
        f"unknown SQLite option {name!r} for --enable",
        hint="known options: {}".format(", ".join(sorted(FEATURES))),
    )


def system_features(system_options: Iterable[str]) -> List[str]:
    """The feature options of the host library that this table knows how to build."""
    names = (opt.split("=", 1)[0] for opt in system_options)
    return [o for o in names if o in FEATURES and FEATURES[o].amalgamation]


def unbuildable_system_features(system_options: Iterable[str]) -> List[str]:
    """Options the host library has that no sqlite-autoconf build can have (warned about)."""
    names = (opt.split("=", 1)[0] for opt in system_options)
    return [o for o in names if o in FEATURES and not FEATURES[o].amalgamation]


def check_compat(compat: str) -> None:
    if compat not in COMPAT_MODES:
        raise UsageError(
            "--compat must be one of {}, got {!r}".format(", ".join(COMPAT_MODES), compat),
            hint="host is the safe default",
        )


def enable_option(name: str) -> str:
    """The option an `--enable NAME` asks for; refused if no sqlite-autoconf build can have it."""
    option = normalize(name)
    if not FEATURES[option].amalgamation:
        raise UsageError(
            f"{option} cannot be built from the sqlite-autoconf tarball: its SQL parser is "
            "pre-generated without it (the option would be listed but not work)",
            hint="drop --enable " + name,
        )
    return option


def select(
    compat: str,
    version: Tuple[int, ...],
    system_options: Iterable[str] = (),
    enable: Iterable[str] = (),
) -> Tuple[Selected, ...]:
    check_compat(compat)
    chosen: Dict[str, str] = {}
    if compat in ("host", "rhel"):
        for option in RHEL_BASELINE:
            chosen.setdefault(option, "rhel baseline")
    if compat == "host":
        for option in system_features(system_options):
            chosen.setdefault(option, "host library")
    for name in enable:
        chosen.setdefault(enable_option(name), "--enable")
    for option in list(chosen):
        for needed in FEATURES[option].requires:
            chosen.setdefault(needed, f"required by {option}")
    return tuple(
        Selected(FEATURES[o], origin)
        for o, origin in chosen.items()
        if FEATURES[o].applies_to(version)
    )


def provider_of(symbol: str) -> Optional[str]:
    for feature in _FEATURES:
        for name in feature.symbols:
            if symbol == name or (name.endswith("_") and symbol.startswith(name)):
                return feature.option
            if symbol.startswith(name) and not name.endswith("_"):
                # sqlite3_column_table_name16 and friends
                return feature.option
    return None


def public_symbols(symbols: Iterable[str]) -> FrozenSet[str]:
    return frozenset(s for s in symbols if PUBLIC_SYMBOL.match(s))
