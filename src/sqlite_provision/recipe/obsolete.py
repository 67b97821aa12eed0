"""Compile options that a later SQLite release builds in or makes a no-op. The host library lists
such an option in `PRAGMA compile_options`; a newer release never can (its list has no such
name), so the ABI gate judges the capability, not the spelling: the option counts as kept when
the new library is at or after the release that changed it AND proves the capability by running
it (under the new library, in a fresh process: `host.pythons.library_argv`).

Where the facts come from:
- the release each option changed in: sqlite.org's release log (changes.html): 3.30.0 item 12
  (STAT3 a no-op), 3.36.0 (serialize/deserialize on by default, SQLITE_OMIT_DESERIALIZE),
  3.38.0 (JSON built in, SQLITE_OMIT_JSON);
- what `PRAGMA compile_options` can list at all: the `azCompileOpt` table (ctime.c) in the
  amalgamation of 3.7.17, 3.26.0, 3.44.2 and 3.52.0. Of the options in `features.FEATURES`,
  only ENABLE_JSON1 is listed by an older release and by none of the newer ones. ENABLE_JSON1
  and ENABLE_STAT3 are listed up to 3.26.0 and gone by 3.44.2; ENABLE_DESERIALIZE is listed by
  none (a host built with it is recognised by its symbols, which the gate compares anyway).
  The other names 3.26.0 can list and 3.44.2 or 3.52.0 cannot are no feature options and no
  distribution's: ENABLE_FTS1/FTS2, HAS_CODEC, 64BIT_STATS, ENABLE_SELECTTRACE, MUTEX_NREF,
  NOINLINE, OMIT_BTREECOUNT, PCACHE_SEPARATE_HEADER, USER_AUTHENTICATION;
- narrowed with src/ctime.c of Debian's source packages of 3.34.1, 3.40.1 and 3.46.1, and that
  3.46.1's compile.html: ENABLE_STAT3, HAS_CODEC and OMIT_BTREECOUNT (a no-op) are gone by
  3.34.1; ENABLE_JSON1 is still listed by 3.34.1 and gone by 3.40.1; ENABLE_SELECTTRACE (renamed
  ENABLE_TREETRACE), ENABLE_FTS1/FTS2, MUTEX_NREF, NOINLINE and PCACHE_SEPARATE_HEADER go between
  3.34.1 and 3.40.1, 64BIT_STATS between 3.40.1 and 3.46.1, USER_AUTHENTICATION between 3.46.1
  and 3.52.0; OMIT_BUILTIN_TEST was renamed UNTESTABLE in 3.16.0 and ENABLE_STAT2 became a no-op
  in 3.7.9, both before any RHEL library here. Neither 3.26.0's nor 3.34.1's ctime.c has
  ENABLE_DESERIALIZE; 3.40.1's and later have OMIT_DESERIALIZE;
- what real libraries list (ENABLE_JSON1 is the only such option among them): RHEL 7's and
  Amazon Linux 2's 3.7.17 and RHEL 8's 3.26.0 (built with their spec flags), Debian 11's 3.34.1
  (RHEL 9's release; RHEL 9 builds with -DSQLITE_ENABLE_JSON1 too), Debian 12's 3.40.1.
  Releases from 3.38.0 on (Amazon Linux 2023's 3.40.0, RHEL 10's 3.46.1) cannot list it.
"""

from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

# What a proof reports: whether it held, and what the query returned (or the error it raised).
ProofResult = Tuple[bool, str]


@dataclass(frozen=True)
class Proof:
    """SQL run under the new library on a fresh in-memory database: the capability is there when
    the first column of the first row of `query` is `expected`. With `serialize`, `setup` runs
    first, the database is copied with sqlite3_serialize into a second connection with
    sqlite3_deserialize, and `query` runs on the copy."""

    query: str
    expected: str
    setup: str = ""
    serialize: bool = False

    def words(self) -> str:
        if self.serialize:
            return f"{self.query} on a database copied by sqlite3_serialize and sqlite3_deserialize"
        return self.query

    def as_json(self) -> Dict[str, object]:
        """What the library probe takes (host/pythons.py LIBRARY_SCRIPT)."""
        return {
            "query": self.query,
            "expected": self.expected,
            "setup": self.setup,
            "serialize": self.serialize,
        }


@dataclass(frozen=True)
class Obsolete:
    option: str  # as the host's `PRAGMA compile_options` lists it
    since: Tuple[int, ...]  # the first release that builds it in (or ignores it)
    change: str  # what that release did
    capability: str  # what a newer library must still do, in words; "" when nothing remains
    omit: str = ""  # the option that compiles the capability out of the newer releases
    proof: Optional[Proof] = None  # None: no capability left to prove, the option is lost

    @property
    def since_text(self) -> str:
        return ".".join(str(part) for part in self.since)


_OBSOLETE = (
    Obsolete(
        "ENABLE_JSON1",
        (3, 38, 0),
        "the JSON functions are built in; SQLITE_OMIT_JSON leaves them out",
        "built-in JSON",
        omit="OMIT_JSON",
        proof=Proof("SELECT json('{}')", "{}"),
    ),
    Obsolete(
        "ENABLE_DESERIALIZE",
        (3, 36, 0),
        "sqlite3_serialize and sqlite3_deserialize are built in; SQLITE_OMIT_DESERIALIZE leaves "
        "them out",
        "built-in sqlite3_serialize and sqlite3_deserialize",
        omit="OMIT_DESERIALIZE",
        proof=Proof(
            "SELECT x FROM t",
            "copied",
            setup="CREATE TABLE t(x); INSERT INTO t VALUES ('copied')",
            serialize=True,
        ),
    ),
    # Not a feature option of features.FEATURES, so never compared: query-planner statistics,
    # which no linked program misses at load time. Listed here because old libraries list it.
    Obsolete(
        "ENABLE_STAT3",
        (3, 30, 0),
        "a no-op: the legacy sqlite_stat3 statistics are gone, ENABLE_STAT4 supersedes them",
        "",
    ),
)
OBSOLETE: Dict[str, Obsolete] = {o.option: o for o in _OBSOLETE}


def obsolete_since(option: str) -> Tuple[int, ...]:
    """The release from which `option` is built in (features.py's `until`)."""
    return OBSOLETE[option].since


def proofs_for(system_options: Iterable[str]) -> Dict[str, Proof]:
    """The proofs to run under the new library for these options of the host library."""
    found: Dict[str, Proof] = {}
    for option in system_options:
        row = OBSOLETE.get(option)
        if row is not None and row.proof is not None:
            found[option] = row.proof
    return found


def built_in(system_version: Tuple[int, ...], system_options: Iterable[str]) -> List[str]:
    """The options a host library has without listing them: each the table can prove, built in
    by the host's own release and not compiled out of it (its OMIT_ option unlisted). Amazon
    Linux 2023's 3.40.0 or RHEL 10's 3.46.1 list no ENABLE_JSON1, yet programs on them may call
    json(): a new library built with SQLITE_OMIT_JSON would take it away."""
    names = set(option_names(system_options))
    return [
        row.option
        for row in _OBSOLETE
        if row.proof is not None and system_version and row.since <= system_version
        and row.omit not in names
    ]  # fmt: skip


def option_names(options: Iterable[str]) -> List[str]:
    """ENABLE_FTS3=3 -> ENABLE_FTS3: the name, without the value."""
    return [o.split("=", 1)[0] for o in options]


@dataclass(frozen=True)
class Judgement:
    kept: Tuple[str, ...]  # each obsolete option kept as its capability, in words
    lost: Tuple[str, ...]  # each option lost: its name, and for an obsolete one why
    omitted: Tuple[str, ...] = ()  # the OMIT_ options that took a lost capability out


def judge(
    wanted: Iterable[str],
    new_version: Tuple[int, ...],
    new_options: Iterable[str],
    proved: Mapping[str, ProofResult],
) -> Judgement:
    """Which of the host's options (`wanted`, names) the new library keeps: each it lists, and
    each obsolete one whose capability it proves at or after the release that built it in."""
    listed = set(option_names(new_options))
    kept: List[str] = []
    lost: List[str] = []
    omitted: List[str] = []
    for option in wanted:
        if option in listed:
            continue
        row = OBSOLETE.get(option)
        if row is None or new_version < row.since:
            lost.append(option)
            continue
        held, said = proved.get(option, (False, "nothing: it was not run"))
        if row.proof is not None and held:
            kept.append(
                f"{option} kept as {row.capability} (built in from {row.since_text}), proved: "
                f"{row.proof.words()} gives {said}"
            )
            continue
        lost.append(lost_words(row, said))
        if row.omit in listed:
            omitted.append(row.omit)
    return Judgement(tuple(kept), tuple(lost), tuple(omitted))


def lost_words(row: Obsolete, said: str) -> str:
    if row.proof is None:
        return f"{row.option} ({row.change} from {row.since_text})"
    return (
        f"{row.option} (no {row.capability}, built in from {row.since_text}: "
        f"{row.proof.words()} gives {said})"
    )
