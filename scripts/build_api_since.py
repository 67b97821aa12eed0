#!/usr/bin/env python3
# Typing style: typing.Optional/List/Tuple, because the tool supports Python 3.7.
"""Generate src/sqlite_provision/data/api-since.csv: the first SQLite release declaring each C API.

Usage (from the repository root):

    python scripts/build_api_since.py --headers /tmp/sqlite-headers [--output PATH]
                                      [--min-version 3.7.17] [--max-version 3.53.4]

Input: a directory of public headers, one per SQLite release, named ``sqlite3-3.X.Y.h``, with an
optional ``sqlite3session-3.X.Y.h`` beside it (merged in; since 3.13.0 the amalgamation's sqlite3.h
already embeds sqlite3session.h, and sqlite3rtree.h too). Only files directly in the directory are
read. The version in each name must equal the ``#define SQLITE_VERSION`` inside, or nothing is
written: some copies are mislabelled (azadkuh/sqlite-amalgamation's tags 3.10.1 and 3.10.2 hold the
3.11.0 header).

Output, sorted by function name so that the same headers give the same bytes:

- ``function``: every function (not variable, macro or typedef) declared at file scope whose name
  matches ``^(sqlite3_|sqlite3session_|sqlite3changeset_|sqlite3changegroup_|sqlite3rebaser_)``.
- ``first_seen``: the oldest header read that declares it.
- ``last_absent``: the newest header read, older than ``first_seen``, that does not declare it;
  empty when the oldest header read declares it. The release that added it lies in
  (last_absent, first_seen]; the pair is exact only where the two are consecutive releases.
- ``option``: what the declaration needs at compile time, in the newest header declaring it, as
  macro names without ``SQLITE_``, joined with ``+``; ``!`` marks a macro that must NOT be defined
  (``!OMIT_DEPRECATED``: there unless the build omits deprecated interfaces). Empty when always
  there. Read from the header only: the #if/#ifdef/#ifndef nesting around the declaration; the
  embedded rtree sub-header (guarded only by its include guard) as ``ENABLE_RTREE``; and the
  declaration's own doc comment where it says "<these interfaces|sqlite3_x()> is/are only
  available if ... [SQLITE_ENABLE_X]" (-> ``ENABLE_X``), "is omitted if ... [SQLITE_OMIT_X]" (->
  ``!OMIT_X``) or "available only on Windows" (-> ``OS_WIN``).
- ``last_seen`` (only when some function disappears): for a function missing from the newest
  header read, the newest header that still declares it; removed in a later release, at the
  latest in the next header read.

Where the headers came from. sqlite.org could not be reached from the machine that built the table,
so each header is a vendored, unmodified copy of the upstream one, its version read from its
``#define SQLITE_VERSION`` and its ``SQLITE_SOURCE_ID`` date checked against the release date in
shared/reference/sqlite-releases.csv (3.24.0 and later; all matched). Wherever two copies of one
release were found (most releases have 2 to 40) they were byte-identical, or declared the same
functions under the same guards; the npm copies of 3.44.2 and 3.52.0 are byte-identical to the
upstream tarballs in shared/sqlite-tarballs. Copies that were not upstream were set aside: the
SQLite3MultipleCiphers and SQLCipher variants (better-sqlite3-multiple-ciphers, op-sqlite's
cpp/sqlcipher), a dqlite-patched "3.20.0" and an hct-branch "3.51.0" snapshot in go-sqlite3's
history, and clang-formatted copies (op-sqlite 9.x).

Re-fetching a header (npm: the package version in the table below; GitHub: the commit):

    # better-sqlite3 >= 7.5 and cordova/op-sqlite: the header is a plain file in the package
    npm pack better-sqlite3@8.2.0     # or: curl -sO "$(npm view better-sqlite3@8.2.0 dist.tarball)"
    tar xzf better-sqlite3-8.2.0.tgz package/deps/sqlite3/sqlite3.h
    cp package/deps/sqlite3/sqlite3.h /tmp/sqlite-headers/sqlite3-3.41.0.h
    #   cordova-sqlite-*: package/sqlite3.h or package/src/deps/common/sqlite3.h;
    #   @op-engineering/op-sqlite: package/cpp/sqlite3.h (not cpp/sqlcipher/sqlite3.h)

    # older better-sqlite3: inside package/deps/sqlite3.tar.gz; sqlite3 (node-sqlite3),
    # @appthreat/sqlite3: inside the package/deps/sqlite-autoconf-*.tar.gz it ships
    npm pack sqlite3@2.1.10
    tar xzf sqlite3-2.1.10.tgz --wildcards 'package/deps/sqlite-autoconf-*.tar.gz'
    tar xzf package/deps/sqlite-autoconf-*.tar.gz --wildcards '*/sqlite3.h' -O \\
        > /tmp/sqlite-headers/sqlite3-3.7.17.h

    # GitHub repositories that track the amalgamation, at the commit in the table
    git -C sqlite-amalgamation show COMMIT:sqlite3.h          # github.com/azadkuh/sqlite-amalgamation
    git -C rusqlite show COMMIT:libsqlite3-sys/sqlite3/sqlite3.h   # github.com/rusqlite/rusqlite
    git -C go-sqlite3 show COMMIT:sqlite3-binding.h | sed -e 1d -e '/^#else \\/\\/ USE_LIBSQLITE3/,$d'
    #   go-sqlite3 (github.com/mattn/go-sqlite3) wraps the header in "#ifndef USE_LIBSQLITE3" and
    #   appends ext/userauth/sqlite3userauth.h after "#else // USE_LIBSQLITE3": the sed drops both
    #   (the 3.10.2 commit still has the plain header: take it as it is).

Release, sha256 of the header (first 16 digits), and the copy used (3.7.17 .. 3.53.4):

    3.7.17    d00d21c50f6a1358  npm sqlite3@2.1.10
    3.8.2     1f1f809cb27f2a2b  npm sqlite3@2.2.0
    3.8.4.3   ca69c248b37e5184  npm sqlite3@2.2.3
    3.8.5     e06f562f97ea7bf8  npm sqlite3@2.2.4
    3.8.6     5af7e60f277ba3c3  npm sqlite3@3.0.0
    3.8.7.1   63966cd2d3b79af6  npm sqlite3@3.0.4
    3.8.8.3   6a11781f519b880a  gh azadkuh/sqlite-amalgamation@1f3d85fb4259
    3.8.9     42c8d6995191a6b3  npm sqlite3@3.0.6
    3.8.10    3fd76e27a97e908e  gh azadkuh/sqlite-amalgamation@32b2d722c55f
    3.8.10.2  45e84f556ef1336d  npm sqlite3@3.0.9
    3.8.11    99fc3d6a6c72f02e  gh azadkuh/sqlite-amalgamation@0e82e265c053
    3.8.11.1  8d3a25aa2c2b2d24  npm sqlite3@3.0.10
    3.9.0     a1957048fa411626  gh azadkuh/sqlite-amalgamation@18ae81bb94d2
    3.9.1     facadd1400d7f105  npm sqlite3@3.1.1
    3.9.2     3354feeb41c23de9  gh azadkuh/sqlite-amalgamation@035e7b009d12
    3.10.2    a2fa36b945273a12  gh mattn/go-sqlite3@3a5555302e9b
    3.11.0    c563c27f8b2b3685  npm better-sqlite3@0.5.0
    3.11.1    bd2f22ea7bda9850  gh azadkuh/sqlite-amalgamation@47b8f1648ea4
    3.12.0    fd6997d774d00379  gh azadkuh/sqlite-amalgamation@d2cf6c4e4c78
    3.12.1    9629917f8b63930b  gh azadkuh/sqlite-amalgamation@b148de0d316c
    3.12.2    d0655c81fd906d5e  gh azadkuh/sqlite-amalgamation@8a66360089c2
    3.13.0    580c29b4e1a6813d  gh azadkuh/sqlite-amalgamation@ce4d998b6bbb
    3.14.0    926ed435f7f92ee0  gh azadkuh/sqlite-amalgamation@64ff2f9cfb4e
    3.14.1    3d985eee4d2b6840  npm better-sqlite3@0.10.0
    3.14.2    8607c31847cb1f79  gh azadkuh/sqlite-amalgamation@c72e8604a807
    3.15.0    e01a1cf8f964ba3e  npm better-sqlite3@1.3.9
    3.15.1    8d59f56298c8dd41  npm cordova-sqlite-storage-dependencies@1.0.1
    3.15.2    c4322304d701eb16  npm cordova-sqlite-ext-deps@0.4.1
    3.16.0    bb665855b2e0c448  gh azadkuh/sqlite-amalgamation@3a2515cc04f6
    3.16.1    97cbcfdf65279b24  gh azadkuh/sqlite-amalgamation@738f0c935cc2
    3.17.0    5b2bd75c77aee900  gh azadkuh/sqlite-amalgamation@f39b8fe7efa0
    3.18.0    f0bad204bb2db0fd  npm better-sqlite3@2.2.0
    3.19.0    9025acee836bfeb3  gh azadkuh/sqlite-amalgamation@88d8a704b12f
    3.19.2    0da17d62e6e2c413  npm better-sqlite3@3.0.0
    3.19.3    2d2cecf709cb7718  npm better-sqlite3@3.0.3
    3.20.0    eb5392d9236b81a4  gh azadkuh/sqlite-amalgamation@825d0ba7d0a3
    3.20.1    2f40c9f0593f58a1  gh azadkuh/sqlite-amalgamation@00cffc81f9a2
    3.21.0    597dbea8fb30377c  npm better-sqlite3@4.1.0
    3.22.0    a9eac62fa30ba19c  npm cordova-sqlite-evcore-extbuild-free@0.9.7
    3.23.0    000339b7999dad88  gh azadkuh/sqlite-amalgamation@698d9bd566b2
    3.23.1    284894217776318e  gh azadkuh/sqlite-amalgamation@0be18defb204
    3.24.0    89192f125b3615dc  npm better-sqlite3@4.1.2
    3.25.0    e4265d20bf66c103  gh azadkuh/sqlite-amalgamation@f6aca149e963
    3.25.1    fb00fddfb8b3d20f  npm better-sqlite3@4.2.0
    3.25.2    eb48cb9e9cfe30de  npm better-sqlite3@5.0.0
    3.25.3    d42151d2e04865fb  gh azadkuh/sqlite-amalgamation@03640922c52a
    3.26.0    4665ec0dc1a9bc06  npm better-sqlite3@5.2.0
    3.27.0    9e1a446ac57a1708  gh azadkuh/sqlite-amalgamation@82b1abd00d16
    3.27.1    e0a7b5119959b803  gh azadkuh/sqlite-amalgamation@830eb80200fd
    3.27.2    113aeb1e92a3e8fa  gh azadkuh/sqlite-amalgamation@95ea22b7bbf9
    3.28.0    5045ace95ddd26ae  npm sqlite3@4.0.7
    3.29.0    4c24b54a67437cd9  npm better-sqlite3@5.4.1
    3.30.0    0342a803c7882633  gh azadkuh/sqlite-amalgamation@7623cf8267a3
    3.30.1    5c4e58eef24c86bc  npm sqlite3@4.1.1
    3.31.0    ce9e08c10e16f06d  gh azadkuh/sqlite-amalgamation@ce7caf5f3765
    3.31.1    970ce4c830c1ad22  npm better-sqlite3@6.0.0
    3.32.0    a4ceb79f9615c877  npm better-sqlite3@7.1.0
    3.32.2    fa2803ad339cab45  gh rusqlite/rusqlite@870290c64d0a
    3.32.3    a6bcd10d55181d80  npm sqlite3@5.0.1
    3.33.0    9f1616845b4e9cb8  npm better-sqlite3@7.1.1
    3.34.0    df3f62896f05be27  npm better-sqlite3@7.1.2
    3.34.1    d07b7d3b64191285  gh azadkuh/sqlite-amalgamation@c659cee5f152
    3.35.0    ece655de85cf6468  gh azadkuh/sqlite-amalgamation@643873e83b20
    3.35.1    960ea4c5b3da2ed9  gh azadkuh/sqlite-amalgamation@3dee1f43e480
    3.35.2    8457bcf5fc4bca55  npm better-sqlite3@7.1.4
    3.35.3    f273c55c8da1bd22  gh azadkuh/sqlite-amalgamation@afb008e9d718
    3.35.4    f06b2cf12205dc9d  gh azadkuh/sqlite-amalgamation@b1d85d279ed7
    3.35.5    0809b65babc4176f  gh azadkuh/sqlite-amalgamation@a81f759aea67
    3.36.0    001f26c0b2ca407a  npm better-sqlite3@7.4.2
    3.37.0    063ed0ae6e392397  npm better-sqlite3@7.4.6
    3.37.1    2d620960ee3e5764  gh azadkuh/sqlite-amalgamation@05b21151afd3
    3.37.2    c0d27886483ecc45  npm better-sqlite3@7.5.0
    3.38.0    d97400b61abc994f  gh azadkuh/sqlite-amalgamation@000c05eb0da0
    3.38.1    7a1d5b2e9ef3fd82  gh azadkuh/sqlite-amalgamation@58e2d367bf93
    3.38.2    61ded34ca2ddf50a  npm better-sqlite3@7.5.1
    3.38.3    4c86ccaab4431a2b  npm sqlite3@5.0.6
    3.38.4    899dc870ab41ed11  npm sqlite3@5.0.7
    3.38.5    4e58238aad4c7472  npm better-sqlite3@7.5.2
    3.39.0    abe0057c5506263d  npm better-sqlite3@7.6.0
    3.39.1    861857da476797bc  npm better-sqlite3@7.6.1
    3.39.2    e43e15069a610488  npm sqlite3@5.0.10
    3.39.3    2f859e1468b8cfa1  npm sqlite3@5.1.0
    3.39.4    2650d56a86f18e52  npm sqlite3@5.1.2
    3.40.0    525ca99bf1f2bd87  npm better-sqlite3@8.0.0
    3.40.1    dc419c400665bd43  npm better-sqlite3@8.1.0
    3.41.0    b594adade9647a8b  npm better-sqlite3@8.2.0
    3.41.1    2b119eb6d2819d2b  npm sqlite3@5.1.5
    3.41.2    10ff8c8842b5e6bb  npm better-sqlite3@8.3.0
    3.42.0    1184605a375f9cca  npm better-sqlite3@8.4.0
    3.43.0    65e932271bc9b037  npm better-sqlite3@8.6.0
    3.43.1    5f864e05f3268d69  npm better-sqlite3@8.7.0
    3.43.2    d0dfc1e5f35421d9  npm better-sqlite3@9.0.0
    3.44.0    9e2f65a6607545b2  npm better-sqlite3@9.1.0
    3.44.2    d91614928370d8b5  shared/sqlite-tarballs
    3.45.0    0c207567adc63152  npm better-sqlite3@9.3.0
    3.45.1    41e066ccd4f89e93  npm better-sqlite3@9.4.0
    3.45.2    7dc8a389408a2385  npm better-sqlite3@9.5.0
    3.45.3    882ad3c0448d0324  npm better-sqlite3@10.0.0
    3.46.0    d088aa96aa70db50  npm better-sqlite3@10.1.0
    3.46.1    89b62c671c5964e1  npm better-sqlite3@11.3.0
    3.47.0    9bcec02d51f43289  npm better-sqlite3@11.5.0
    3.47.1    27ce5f4ecdb11241  npm better-sqlite3@11.6.0
    3.47.2    b4b4cbcc2bd6dda8  npm better-sqlite3@11.7.0
    3.48.0    78d2dbfa4ebd6146  npm better-sqlite3@11.8.0
    3.49.0    003d87c193f4a0e3  gh rusqlite/rusqlite@78ae68354b03
    3.49.1    88da6f1963bc192d  npm better-sqlite3@11.9.0
    3.49.2    2198c66d4c59ae86  npm better-sqlite3@11.10.0
    3.50.0    3d500b0e3248d935  npm @op-engineering/op-sqlite@14.0.4
    3.50.1    cef9adf8b309ab3e  npm @appthreat/sqlite3@6.0.6
    3.50.2    7db44ac3e95c465c  npm better-sqlite3@12.2.0
    3.50.3    cca50ac4a1326697  gh mattn/go-sqlite3@8c283ed77e17
    3.50.4    abd1514e0351f793  npm better-sqlite3@12.4.1
    3.51.0    54255b762709a525  npm better-sqlite3@12.4.5
    3.51.1    4340a24cda7bc436  npm better-sqlite3@12.5.0
    3.51.2    6c8b9f648f36c84b  npm better-sqlite3@12.6.0
    3.51.3    19585c8b5230e9d4  npm better-sqlite3@12.8.0
    3.52.0    37537d6131c1d2e5  shared/sqlite-tarballs
    3.53.0    8e43a79982422f47  npm better-sqlite3@12.9.0
    3.53.1    16d6e2f265fb13ec  npm better-sqlite3@12.10.0
    3.53.2    9e69a1353a428845  npm better-sqlite3@12.10.1
    3.53.3    4ff81af4849acabc  npm better-sqlite3@13.0.0
    3.53.4    919e7f2e8ed1d8f5  npm better-sqlite3@13.0.2

Also obtained but outside the range, in /tmp/sqlite-headers/extra/ when built: 3.7.7.1, 3.7.8 and
3.7.13 (npm sqlite3@2.0.17, 2.0.18, 2.1.7) and 3.54.1 (npm better-sqlite3@13.1.1).
No copy was found of 3.32.1 and 3.44.1 (of the releases in sqlite-releases.csv), nor of older
ones such as 3.8.0-3.8.1, 3.8.3, 3.8.4-3.8.4.2, 3.8.7.2-3.8.8.2, 3.8.10.1, 3.10.0-3.10.1, 3.16.2
and 3.19.1.

Stdlib only; no compiler or preprocessor: the header is read as text, comments set aside, and the
#if nesting tracked by hand (a plain conjunction of defined() tests; anything else is ignored).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "src" / "sqlite_provision" / "data" / "api-since.csv"
DEFAULT_MIN_VERSION = "3.7.17"
DEFAULT_MAX_VERSION = "3.53.4"

API_NAME_RE = re.compile(
    r"^(sqlite3_|sqlite3session_|sqlite3changeset_|sqlite3changegroup_|sqlite3rebaser_)\w+$"
)
_FILE_RE = re.compile(r"^(sqlite3|sqlite3session)-(3\.\d+\.\d+(?:\.\d+)?)\.h$")
_VERSION_RE = re.compile(r"^3\.\d+\.\d+(?:\.\d+)?$")
_SQLITE_VERSION_RE = re.compile(r'^\s*#\s*define\s+SQLITE_VERSION\s+"([0-9.]+)"', re.MULTILINE)
_DIRECTIVE_RE = re.compile(r"^\s*#\s*(\w+)\s*(.*)$")
_TOKEN_RE = re.compile(r"\x01\d+\x02|[A-Za-z_]\w*|\d\w*|\.\.\.|\S")
_MARKER_RE = re.compile(r"\x01(\d+)\x02")
# A doc sentence that restricts availability, e.g. "These APIs are only available if the library
# was compiled with the [SQLITE_ENABLE_COLUMN_METADATA] C-preprocessor symbol." or "This
# interface is omitted if SQLite is compiled with the [SQLITE_OMIT_DESERIALIZE] option."
_AVAILABILITY_RE = re.compile(
    r"^(?P<subject>.*?)\b(?:is|are)\s+(?P<verb>only\s+available|available\s+only|omitted)\b(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_GROUP_SUBJECT_RE = re.compile(
    r"\b(?:this|these)\s+(?:apis?|interfaces?|routines?|functions?)\b|\bit\s*$", re.IGNORECASE
)
_FUNCTION_REF_RE = re.compile(r"\b(sqlite3\w*)\s*\(\)")
_OPTION_REF_RE = re.compile(r"\bSQLITE_((?:ENABLE|OMIT)_[A-Z0-9_]+)\b")
_DEFINED_RE = re.compile(r"(!?)\s*defined\s*\(?\s*(\w+)\s*\)?")

# Sub-headers that the amalgamation's sqlite3.h embeds, and whose only guard is their include
# guard: the option their functions need in the library.
SECTION_OPTIONS = {"_SQLITE3RTREE_H_": "ENABLE_RTREE"}

OUTPUT_COLUMNS = ("function", "first_seen", "last_absent", "option")


class HeaderError(Exception):
    """A header or the header directory is not what the script expects; nothing was written."""


def version_key(version: str) -> Tuple[int, ...]:
    if not _VERSION_RE.match(version):
        raise HeaderError(f"bad version {version!r}: expected 3.X.Y or 3.X.Y.Z")
    parts = tuple(int(p) for p in version.split("."))
    return parts + (0,) * (4 - len(parts))


def strip_comments(text: str) -> Tuple[str, List[str]]:
    """Replace each comment by a marker (byte 1, its index in the returned list, byte 2).

    Newlines are kept, so the line structure stays, and so are string literals.
    """
    out: List[str] = []
    comments: List[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and i + 1 < n and text[i + 1] == "*":
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            comments.append(text[i + 2 : end - 2])
            out.append(f" \x01{len(comments) - 1}\x02 " + "\n" * text.count("\n", i, end))
            i = end
        elif c == "/" and i + 1 < n and text[i + 1] == "/":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out), comments


def logical_lines(text: str) -> List[str]:
    """Lines with backslash continuations joined."""
    lines: List[str] = []
    pending = ""
    for raw in text.split("\n"):
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


# A condition frame: list of (macro, positive) terms that must all hold, or None when the
# expression is not a plain conjunction of defined() tests (then it is ignored), and whether the
# frame is a constant false (#if 0).
Term = Tuple[str, bool]


def parse_condition(directive: str, expr: str) -> Tuple[Optional[List[Term]], bool]:
    expr = expr.strip()
    if directive == "ifdef":
        return [(expr.split()[0], True)], False
    if directive == "ifndef":
        return [(expr.split()[0], False)], False
    if expr == "0":
        return [], True
    if "||" in expr:
        return None, False
    terms: List[Term] = []
    for part in expr.split("&&"):
        match = _DEFINED_RE.fullmatch(part.strip())
        if match is None:
            return None, False
        terms.append((match.group(2), match.group(1) != "!"))
    return terms, False


def negate(terms: Optional[List[Term]]) -> Optional[List[Term]]:
    if terms is not None and len(terms) == 1:
        return [(terms[0][0], not terms[0][1])]
    return None  # the negation of a conjunction is not one: ignore it


class Frame:
    def __init__(self, terms: Optional[List[Term]], dead: bool) -> None:
        self.terms = terms
        self.dead = dead


def doc_options(comment: str, group: Sequence[str]) -> Dict[str, List[str]]:
    """Options that a doc comment says the functions declared right after it need.

    Only sentences of the form "<subject> is/are only available ..." or "... is omitted ..." count;
    the subject must name the functions (``sqlite3_x()``) or be "this/these API(s)/interface(s)/
    routine(s)/function(s)" or "it", which mean every function declared under the comment.
    """
    text = " ".join(line.strip().lstrip("*").strip() for line in comment.splitlines())
    text = re.sub(r"\s+", " ", text.replace("^", ""))
    found: Dict[str, List[str]] = {}
    for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z\[(])", text):
        match = _AVAILABILITY_RE.match(sentence)
        if match is None:
            continue
        subject, rest = match.group("subject"), match.group("rest")
        omitted = match.group("verb").lower() == "omitted"
        options: List[str] = []
        for option in _OPTION_REF_RE.findall(rest):
            if option.startswith("ENABLE_") and not omitted:
                options.append(option)
            elif option.startswith("OMIT_") and omitted:
                options.append("!" + option)
        if not omitted and re.search(r"\bon\s+windows\b", rest, re.IGNORECASE):
            options.append("OS_WIN")
        if not options:
            continue
        named = [name for name in _FUNCTION_REF_RE.findall(subject) if name in group]
        if named:
            targets = named
        elif _GROUP_SUBJECT_RE.search(subject) and not _FUNCTION_REF_RE.search(subject):
            targets = list(group)
        else:
            continue
        for name in targets:
            for option in options:
                if option not in found.setdefault(name, []):
                    found[name].append(option)
    return found


def declarations(text: str) -> Dict[str, Tuple[str, ...]]:
    """Map each API function declared in a header to the options its declaration needs.

    An option is a macro without its ``SQLITE_`` prefix, ``!`` first when it must not be defined.
    They come from the #if nesting around the declaration, from the sub-header it is in
    (SECTION_OPTIONS), and from its doc comment (doc_options), in that order.
    """
    code, comments = strip_comments(text)
    lines = logical_lines(code)
    defined_here: Set[str] = set()
    for line in lines:
        match = _DIRECTIVE_RE.match(_MARKER_RE.sub(" ", line))
        if match and match.group(1) == "define" and match.group(2):
            defined_here.add(match.group(2).split("(")[0].split()[0])

    guards: Dict[str, List[str]] = {}
    doc_of: Dict[str, int] = {}
    stack: List[Frame] = []
    statement: List[Tuple[str, Tuple[Frame, ...]]] = []
    current_doc: List[Optional[int]] = [None]
    braces: List[bool] = []  # one per open brace: True where what it opens is not extern "C"

    def tokens_of(items: List[Tuple[str, Tuple[Frame, ...]]]) -> List[str]:
        return [tok for tok, _ in items]

    def finish() -> None:
        tokens = tokens_of(statement)
        if tokens and tokens[0] not in ("typedef", "struct", "union", "enum"):
            for index, tok in enumerate(tokens[:-1]):
                if tokens[index + 1] != "(":
                    continue
                # The first name followed by "(" is the declared function. In a function pointer
                # ("int (*name)(...)") it is the return type, and no API name matches.
                if API_NAME_RE.match(tok):
                    frames = statement[index][1]
                    if not any(frame.dead for frame in frames) and tok not in guards:
                        guards[tok] = guard_of(frames)
                        if current_doc[0] is not None:
                            doc_of[tok] = current_doc[0]
                break  # only the first name followed by "(" is the declared one
        statement.clear()

    def guard_of(frames: Tuple[Frame, ...]) -> List[str]:
        parts: List[str] = []
        for frame in frames:
            for macro, positive in frame.terms or ():
                if not positive and macro in defined_here:
                    # an include guard: !defined(X) where the header itself defines X
                    part = SECTION_OPTIONS.get(macro, "")
                elif macro.startswith("SQLITE_"):
                    part = ("" if positive else "!") + macro[len("SQLITE_") :]
                else:
                    part = ""
                if part and part not in parts:
                    parts.append(part)
        return parts

    for line in lines:
        match = _DIRECTIVE_RE.match(_MARKER_RE.sub(" ", line))
        if match:
            directive, expr = match.group(1), match.group(2).strip()
            if directive in ("if", "ifdef", "ifndef"):
                terms, dead = parse_condition(directive, expr)
                stack.append(Frame(terms, dead))
            elif directive == "elif":
                if stack:
                    terms, dead = parse_condition("if", expr)
                    stack[-1] = Frame(terms, dead)
            elif directive == "else":
                if stack:
                    top = stack[-1]
                    stack[-1] = Frame([] if top.dead else negate(top.terms), False)
            elif directive == "endif":
                if stack:
                    stack.pop()
            continue
        snapshot = tuple(stack)
        for tok in _TOKEN_RE.findall(line):
            marker = _MARKER_RE.fullmatch(tok)
            if marker:
                # a comment between declarations documents the ones that follow it
                if not statement and not any(braces):
                    current_doc[0] = int(marker.group(1))
            elif tok == "{":
                # extern "C" { ... } holds declarations; any other brace a body or initialiser
                braces.append(tokens_of(statement) != ["extern", '"', "C", '"'])
                statement.clear()
            elif tok == "}":
                if braces:
                    braces.pop()
                statement.clear()
            elif tok == ";":
                if not any(braces):
                    finish()
                statement.clear()
            else:
                statement.append((tok, snapshot))
    if not any(braces):
        finish()

    groups: Dict[int, List[str]] = {}
    for name, index in doc_of.items():
        groups.setdefault(index, []).append(name)
    for index, group in groups.items():
        for name, options in doc_options(comments[index], group).items():
            guards[name] += [option for option in options if option not in guards[name]]
    return {name: tuple(parts) for name, parts in guards.items()}


def read_header_dir(directory: Path) -> Dict[str, List[Path]]:
    """Version -> [sqlite3-V.h, sqlite3session-V.h?], checking each file's own SQLITE_VERSION."""
    by_version: Dict[str, List[Path]] = {}
    for entry in sorted(directory.iterdir()):
        match = _FILE_RE.match(entry.name)
        if not entry.is_file() or match is None:
            continue
        kind, version = match.groups()
        if kind == "sqlite3":
            inner = _SQLITE_VERSION_RE.search(entry.read_text(encoding="utf-8", errors="replace"))
            if inner is None or inner.group(1) != version:
                found = inner.group(1) if inner else "none"
                raise HeaderError(
                    f"{entry}: #define SQLITE_VERSION is {found}, the name says {version}"
                )
            by_version.setdefault(version, []).insert(0, entry)
        else:
            by_version.setdefault(version, []).append(entry)
    for version, files in by_version.items():
        if not files[0].name.startswith("sqlite3-"):
            raise HeaderError(f"sqlite3session-{version}.h without sqlite3-{version}.h")
    return by_version


def build_rows(
    headers: Dict[str, List[Path]], min_version: Optional[str], max_version: Optional[str]
) -> Tuple[List[str], List[Dict[str, str]]]:
    versions = sorted(headers, key=version_key)
    if min_version:
        versions = [v for v in versions if version_key(v) >= version_key(min_version)]
    if max_version:
        versions = [v for v in versions if version_key(v) <= version_key(max_version)]
    if not versions:
        raise HeaderError("no header in the requested range")

    per_version: List[Dict[str, Tuple[str, ...]]] = []
    for version in versions:
        merged: Dict[str, Tuple[str, ...]] = {}
        for path in headers[version]:
            for name, guard in declarations(
                path.read_text(encoding="utf-8", errors="replace")
            ).items():
                merged.setdefault(name, guard)
        if not merged:
            raise HeaderError(f"no API function found in the header of {version}")
        per_version.append(merged)

    names = sorted(set().union(*per_version))
    newest = len(versions) - 1
    rows: List[Dict[str, str]] = []
    for name in names:
        present = [i for i, decls in enumerate(per_version) if name in decls]
        first, last = present[0], present[-1]
        rows.append(
            {
                "function": name,
                "first_seen": versions[first],
                "last_absent": versions[first - 1] if first > 0 else "",
                "option": "+".join(per_version[last][name]),
                "last_seen": versions[last] if last < newest else "",
            }
        )
    return versions, rows


def render(rows: List[Dict[str, str]]) -> str:
    columns = list(OUTPUT_COLUMNS)
    if any(row["last_seen"] for row in rows):
        columns.append("last_seen")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, str(path))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--headers", required=True, type=Path, help="directory of sqlite3-3.X.Y.h files"
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="CSV to write (- for stdout)"
    )
    parser.add_argument(
        "--min-version", default=DEFAULT_MIN_VERSION, help="ignore older headers ('' for none)"
    )
    parser.add_argument(
        "--max-version", default=DEFAULT_MAX_VERSION, help="ignore newer headers ('' for none)"
    )
    args = parser.parse_args(argv)
    try:
        if not args.headers.is_dir():
            raise HeaderError(f"{args.headers} is not a directory")
        versions, rows = build_rows(
            read_header_dir(args.headers), args.min_version, args.max_version
        )
    except HeaderError as exc:
        print(f"build_api_since: {exc}", file=sys.stderr)
        return 1
    text = render(rows)
    if str(args.output) == "-":
        sys.stdout.write(text)
    else:
        write_atomically(args.output, text)
    print(
        f"build_api_since: {len(rows)} functions from {len(versions)} headers "
        f"({versions[0]} .. {versions[-1]})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
