"""The RPM of a build (pure): its name, its spec (templates/sqlite.spec.j2), and the time that
makes it reproducible. store/rpm.py runs rpmbuild on what this renders.

The name carries the version (`sqlite-provision-sqlite3_44_2`): versions install side by side, a
newer one never upgrades an older one away, and no name collides with RHEL's own packages
(sqlite, sqlite-libs, sqlite-devel); the template says why not installonlypkgs. The underscores
keep the name free of `-<digit>`, so that dnf and rpm never read part of it as a version, and
unambiguous (3.5.34 and 3.53.4 would both be `3534`).
"""

import calendar
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from sqlite_provision.errors import UsageError

NAME_PREFIX = "sqlite-provision-sqlite"
TEMPLATE = "sqlite.spec.j2"
DEFAULT_RELEASE = "1"
VERSION_TEXT = re.compile(r"^[0-9]+(\.[0-9]+){1,3}$")
RELEASE_TEXT = re.compile(r"^[A-Za-z0-9._+]+$")
ARCH_TEXT = re.compile(r"^[A-Za-z0-9_]+$")
PREFIX_TEXT = re.compile(r"^(/[A-Za-z0-9._+@-]+)+$")  # no %, space or glob: rpm would expand them
# A prefix root the package may own (and rpm remove when its last version goes): never one of
# these, which belong to the filesystem package or to everyone.
SHARED_DIRS = frozenset(
    "/ /opt /usr /usr/local /srv /var /var/lib /home /usr/lib /usr/lib64 /usr/share /etc /tmp "
    "/var/tmp".split()
)
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def package_name(version: str) -> str:
    """3.44.2 -> sqlite-provision-sqlite3_44_2."""
    check(VERSION_TEXT, version, "SQLite version")
    return NAME_PREFIX + version.replace(".", "_")


PACKAGE_VERSION = re.compile(r"^[0-9]+(_[0-9]+){1,3}$")


def version_of_package(name: str) -> str:
    """sqlite-provision-sqlite3_44_2 -> 3.44.2 (package_name's inverse); anything that is not
    the name of a `build --rpm` package is a UsageError."""
    rest = name[len(NAME_PREFIX) :] if name.startswith(NAME_PREFIX) else ""
    version = rest.replace("_", ".")
    if not PACKAGE_VERSION.match(rest) or package_name(version) != name:
        raise UsageError(
            f"--rpm-package {name!r} is not the name of a `sqlite-provision build --rpm` package",
            hint="name one as build --rpm does: sqlite-provision-sqlite3_44_2 for SQLite 3.44.2 "
            "(no version or arch after it); for any other RPM file, use --rpm FILE",
        )
    return version


@dataclass(frozen=True)
class PackageRecipe:
    """Everything the spec says, from the build's metadata (store/artifact.py's format)."""

    name: str
    version: str
    release: str
    arch: str
    prefix: str  # the version's tree: /opt/sqlite/3.44.2
    own_parent: Optional[str]  # the prefix root the package also owns (/opt/sqlite), if any
    source_date_epoch: int
    glibc_min: str
    era: str
    configure: Tuple[str, ...]
    cflags: str
    compile_options: Tuple[str, ...]
    tool_version: str

    @property
    def file_name(self) -> str:
        """rpmbuild's own name for it: NAME-VERSION-RELEASE.ARCH.rpm."""
        return f"{self.name}-{self.version}-{self.release}.{self.arch}.rpm"

    @property
    def nevra(self) -> str:
        return f"{self.name}-{self.version}-{self.release}.{self.arch}"


def check(pattern: "re.Pattern[str]", text: str, what: str) -> str:
    if not pattern.match(text):
        raise UsageError(
            f"{what} {text!r} cannot go into an RPM spec",
            hint="use plain letters, digits and . _ + (and / - @ in paths)",
        )
    return text


def owned_parent(prefix: str, version: str) -> Optional[str]:
    """The prefix root when the prefix is ROOT/VERSION (the tool's layout) and ROOT is the tool's
    own directory: owned by every version's package, so rpm removes it with the last one (and
    leaves it while the tool's `current` link is in it)."""
    parent, leaf = os.path.split(prefix)
    if leaf != version or parent in SHARED_DIRS:
        return None
    return parent


def recipe_from_metadata(
    metadata: Mapping[str, Any],
    *,
    source_date_epoch: int,
    prefix: Optional[str] = None,
    release: str = DEFAULT_RELEASE,
) -> PackageRecipe:
    """The recipe of an artifact's metadata (or the same fields of a staged build); `prefix`
    overrides the one it was built for (the tree must then have been relocated to it)."""
    version = check(VERSION_TEXT, str(metadata.get("version")), "SQLite version")
    where = check(PREFIX_TEXT, str(prefix or metadata.get("prefix")), "prefix")
    build: Dict[str, Any] = dict(metadata.get("build") or {})
    return PackageRecipe(
        name=package_name(version),
        version=version,
        release=check(RELEASE_TEXT, release, "RPM release"),
        arch=check(ARCH_TEXT, str(metadata.get("arch")), "architecture"),
        prefix=where,
        own_parent=owned_parent(where, version),
        source_date_epoch=int(source_date_epoch),
        glibc_min=str(metadata.get("glibc_min") or "any"),
        era=str(build.get("era") or "sqlite"),
        configure=tuple(str(a) for a in build.get("configure") or ()),
        cflags=str(build.get("cflags") or ""),
        compile_options=tuple(str(o) for o in build.get("compile_options") or ()),
        tool_version=str(metadata.get("tool_version") or ""),
    )


def spec_text(value: str) -> str:
    """A value as literal spec text: one line, no macro expansion."""
    return " ".join(value.split()).replace("%", "%%")


def render_spec(recipe: PackageRecipe, template: str) -> str:
    """The spec, from the template's text (no I/O)."""
    import jinja2

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - an RPM spec, not HTML; every value is checked or escaped
    )
    return env.from_string(template).render(
        name=recipe.name,
        version=recipe.version,
        release=recipe.release,
        arch=recipe.arch,
        prefix=recipe.prefix,
        prefix_pattern=re.sub(r"([.+])", r"\\\\\1", recipe.prefix),
        own_parent=recipe.own_parent,
        source_date_epoch=str(recipe.source_date_epoch),
        changelog_date=changelog_date(recipe.source_date_epoch),
        glibc_min=recipe.glibc_min,
        era=spec_text(recipe.era),
        configure=spec_text(" ".join(recipe.configure)) or "(none)",
        cflags=spec_text(recipe.cflags) or "(none)",
        compile_options=spec_text(" ".join(recipe.compile_options)) or "(none)",
        tool_version=spec_text(recipe.tool_version),
    )


def changelog_date(epoch: int) -> str:
    """`Fri Nov 24 2023`, in UTC and in English whatever the locale."""
    moment = time.gmtime(epoch)
    return (
        f"{DAYS[moment.tm_wday]} {MONTHS[moment.tm_mon - 1]} {moment.tm_mday:02d} {moment.tm_year}"
    )


def source_date_epoch(released: Optional[str], given: Optional[str] = None) -> int:
    """The package's time: SOURCE_DATE_EPOCH when the caller has one (`given`), else the
    release's date (YYYY-MM-DD, midnight UTC): the same inputs, the same time, whenever built."""
    if given:
        try:
            value = int(given)
        except ValueError:
            raise UsageError(
                f"SOURCE_DATE_EPOCH={given!r} is not a number of seconds",
                hint="unset it, or set it to a Unix time such as 1700784000",
            ) from None
        if value < 0:
            raise UsageError(f"SOURCE_DATE_EPOCH={given} is negative", hint="unset it")
        return value
    if not released:
        raise UsageError(
            "no release date for this SQLite version, and no SOURCE_DATE_EPOCH",
            hint="set SOURCE_DATE_EPOCH to the Unix time the package should carry",
        )
    return calendar.timegm(time.strptime(released, "%Y-%m-%d"))
