"""What the user asked for (`Options`), where things go on disk (`Layout`), the defaults, the
environment read once (`Environment`, `read_environment`: the one place the tool reads
os.environ), and `validate`: the one place every piece of user input is checked.

validate() checks syntax and conflicts, with nothing but the input: each version, hash, URL,
option name, unit name and path, and every pair of options that cannot go together. What needs
the host or the catalog (does that python exist, is 3.99.0 a release) is resolution's business.
"""

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Dict, FrozenSet, Mapping, Optional, Tuple
from urllib.parse import urlparse

from sqlite_provision.errors import UsageError

DEFAULT_PREFIX_ROOT = Path("/opt/sqlite")
DEFAULT_PROFILE_FILE = Path("/etc/profile.d/sqlite-provision.sh")
DEFAULT_MIN_VERSION = "3.24.0"
DEFAULT_LOCK_TIMEOUT = 600.0
DEFAULT_SYSTEMD_DIR = Path("/etc/systemd/system")
DEFAULT_LD_SO_CONF_DIR = Path("/etc/ld.so.conf.d")
LATEST = "latest"

MANIFEST_NAME = "sqlite-provision-manifest.json"
CURRENT_LINK_NAME = "current"
PREVIOUS_LINK_NAME = "previous"
ACTIVATION_RECORD = ".sqlite-provision-activation.json"
# Every file the tool writes outside a prefix says so; uninstall removes only files that still do.
MANAGED_MARKER = "Managed by sqlite-provision"

ENV_MIRROR = "SQLITE_PROVISION_MIRROR"
ENV_CACHE_DIR = "SQLITE_PROVISION_CACHE_DIR"
ENV_LOG_DIR = "SQLITE_PROVISION_LOG_DIR"
ENV_LOCK_FILE = "SQLITE_PROVISION_LOCK_FILE"
ENV_DEBUG = "SQLITE_PROVISION_DEBUG"
LOCK_NAME = "sqlite-provision.lock"


@dataclass(frozen=True)
class Options:
    version: str = ""  # "" = the catalog's default, "latest" = the download page
    tarball: Optional[Path] = None
    url: Optional[str] = None
    mirror: Optional[str] = None
    sha3_256: Optional[str] = None
    sha256: Optional[str] = None
    allow_withdrawn: bool = False
    prefix: Optional[Path] = None
    prefix_root: Path = DEFAULT_PREFIX_ROOT
    profile_file: Path = DEFAULT_PROFILE_FILE
    no_profile: bool = False
    min_version: str = DEFAULT_MIN_VERSION
    pythons: Tuple[str, ...] = ()
    jobs: int = 0  # 0 = the number of CPUs
    build_user: Optional[str] = None  # as root, who runs configure and make (None = nobody)
    install_deps: bool = True
    selinux: bool = True  # --no-selinux: False
    force: bool = False
    dry_run: bool = False
    json: bool = False
    env_cflags: str = ""
    compat: str = "host"  # host | rhel | none
    enable: Tuple[str, ...] = ()
    allow_abi_loss: bool = False
    keep_failed: bool = False
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    systemd_units: Tuple[str, ...] = ()
    venvs: Tuple[Path, ...] = ()  # --venv DIR: virtual environments to bind
    env_file: Optional[Path] = None
    ld_so_conf: bool = False
    artifact: Optional[Path] = None  # install --artifact FILE: a prebuilt artifact
    rpm: Optional[Path] = None  # install --rpm FILE: an RPM from `build --rpm`
    rpm_package: Optional[str] = None  # install --rpm-package NAME: one by name, from the repos
    artifact_out: Optional[Path] = None  # build --artifact OUT: where to write one
    rpm_out: Optional[Path] = None  # build --rpm OUT_DIR: where to write the RPM
    sign_key: Optional[str] = None  # build --rpm --sign KEY: the gpg key rpmsign uses
    versions: Tuple[str, ...] = ()  # uninstall VERSION...
    remove_all: bool = False  # uninstall --all
    # The options the user gave (by their field names): a conflict is between options given,
    # not with a default.
    given: FrozenSet[str] = frozenset()


@dataclass(frozen=True)
class Layout:
    prefix: Path  # where this version's files live
    current_link: Optional[Path]  # prefix_root/current, or None with an explicit --prefix
    active_lib_dir: Path  # what the activation files put on LD_LIBRARY_PATH
    profile_file: Optional[Path]  # None with --no-profile

    @property
    def manifest(self) -> Path:
        return self.prefix / MANIFEST_NAME

    @property
    def activation_record(self) -> Optional[Path]:
        """Where the activation files written are listed, for `uninstall --all`."""
        if self.current_link is None:
            return None
        return self.current_link.parent / ACTIVATION_RECORD


def make_layout(options: Options, version: str) -> Layout:
    if options.prefix is not None:
        prefix = options.prefix
        current: Optional[Path] = None
        active = prefix / "lib"
    else:
        prefix = options.prefix_root / version
        current = options.prefix_root / CURRENT_LINK_NAME
        active = current / "lib"
    return Layout(
        prefix=prefix,
        current_link=current,
        active_lib_dir=active,
        profile_file=None if options.no_profile else options.profile_file,
    )


def csh_twin(profile: Path) -> Path:
    """The csh/tcsh snippet written beside the sh one."""
    return profile.with_suffix(".csh") if profile.suffix == ".sh" else Path(str(profile) + ".csh")


# --- the environment, read once ------------------------------------------------------------------


def is_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class HostPaths:
    """The host's own places: where unit drop-ins and ld.so.conf snippets go, and the root whose
    etc/os-release names the OS. The real ones unless constructed otherwise, which only the
    tests do (tests/support/launch.py); no environment variable moves them."""

    systemd_dir: Path = DEFAULT_SYSTEMD_DIR
    ld_so_conf_dir: Path = DEFAULT_LD_SO_CONF_DIR
    os_root: Path = Path("/")


@dataclass(frozen=True)
class FetchPolicy:
    """How source/fetch.py downloads: the connect and read timeouts (the read timeout applies to
    each wait for data), the number of attempts (at least one), the backoff before the second
    (doubled before each next one), and the CA bundle the environment names (SSL_CERT_FILE), if
    any. With the defaults, a server that accepts and never answers costs about 2 minutes."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    attempts: int = 4  # one attempt and three retries: 500 three times, then 200, still works
    backoff: float = 0.5
    ca_bundle: Optional[str] = None

    @property
    def timeout(self) -> Tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


REAL_HOST_PATHS = HostPaths()
DEFAULT_FETCH_POLICY = FetchPolicy()


@dataclass(frozen=True)
class Environment:
    """Everything the tool takes from the environment it starts in, read once by
    `read_environment` (in cli.main) and passed down: no other module reads os.environ (the
    pyz's start, pyz_boot, reads its own variables before the package is importable).
    `variables` is the whole environment as it was read: the runner builds the environment of
    every command it runs from it."""

    variables: Mapping[str, str]
    cache_dir: Path
    log_dir: Path
    lock_file: Path
    tmp_dir: Path  # $TMPDIR, as tempfile finds it
    home: Path
    search_path: str  # $PATH, where the host's tools are looked for
    mirror: Optional[str]  # $SQLITE_PROVISION_MIRROR, when --mirror is not given
    cflags: str  # $CFLAGS, added to the build's
    debug: bool  # $SQLITE_PROVISION_DEBUG: an internal error shows its traceback
    paths: HostPaths = REAL_HOST_PATHS
    fetch: FetchPolicy = DEFAULT_FETCH_POLICY

    @property
    def build_dir(self) -> Path:
        """The build directory of the runs that share the lock, in TMPDIR. One name per lock,
        so that --dry-run shows the path the run uses, and the next run (holding the lock, so
        the one before is dead) removes what a killed run left there."""
        token = hashlib.sha256(str(self.lock_file).encode("utf-8")).hexdigest()[:8]
        return self.tmp_dir / f"sqlite-provision-build-{token}"


def read_environment(
    paths: HostPaths = REAL_HOST_PATHS,
    fetch: FetchPolicy = DEFAULT_FETCH_POLICY,
    variables: Optional[Mapping[str, str]] = None,
    tool_sets: Optional[Mapping[str, str]] = None,
) -> Environment:
    """The environment as the tool reads it: this process's, unless `variables` is given (the
    tests'), with what the tool itself sets for its commands (`tool_sets`: cli's locale)."""
    env = dict(os.environ if variables is None else variables)
    env.update(tool_sets or {})
    # tempfile and expanduser read this process's environment themselves.
    tmp = _temporary_directory() if variables is None else env.get("TMPDIR", "/tmp")  # noqa: S108
    home = os.path.expanduser("~") if variables is None else env.get("HOME", "/root")
    return Environment(
        variables=MappingProxyType(env),
        cache_dir=cache_dir(env),
        log_dir=log_dir(env),
        lock_file=lock_path(env),
        tmp_dir=Path(tmp),
        home=Path(home),
        search_path=env.get("PATH", os.defpath),
        mirror=env.get(ENV_MIRROR) or None,
        cflags=env.get("CFLAGS", ""),
        debug=bool(env.get(ENV_DEBUG)),
        paths=paths,
        fetch=replace(fetch, ca_bundle=ca_bundle(env)),
    )


def _temporary_directory() -> str:
    """tempfile's directory; with none usable, $TMPDIR or /tmp as named, so that the tool still
    starts and the run that needs one says which (preflight.check_tmp_exec)."""
    try:
        return tempfile.gettempdir()
    except OSError:
        return os.environ.get("TMPDIR") or "/tmp"  # noqa: S108


def ca_bundle(env: Mapping[str, str]) -> Optional[str]:
    """SSL_CERT_FILE, when it is the only CA setting given.

    requests reads REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE (those win) but ignores
    SSL_CERT_FILE, which OpenSSL, curl and pip honour; hosts behind a TLS-inspecting proxy
    commonly set only that one.
    """
    if env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE"):
        return None
    cert_file = env.get("SSL_CERT_FILE")
    if cert_file and os.path.isfile(cert_file):
        return cert_file
    return None


def _xdg_dir(env: Mapping[str, str], var: str, fallback: str) -> Path:
    value = env.get(var, "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path(env.get("HOME", "/root")) / fallback


def _tool_dir(env: Mapping[str, str], override: str, system: str, xdg: str, fallback: str) -> Path:
    """$override if set; as root the system directory; else the user's XDG directory."""
    if env.get(override):
        return Path(env[override])
    if is_root():
        return Path(system)
    return _xdg_dir(env, xdg, fallback) / "sqlite-provision"


def cache_dir(env: Mapping[str, str]) -> Path:
    return _tool_dir(env, ENV_CACHE_DIR, "/var/cache/sqlite-provision", "XDG_CACHE_HOME", ".cache")


def log_dir(env: Mapping[str, str]) -> Path:
    return _tool_dir(
        env, ENV_LOG_DIR, "/var/log/sqlite-provision", "XDG_STATE_HOME", ".local/state"
    )


def lock_path(env: Mapping[str, str]) -> Path:
    """Root's runs share /run/lock/sqlite-provision.lock; every other user has a lock of their
    own (in $XDG_RUNTIME_DIR, else beside their log), so that one who runs the tool after root
    is not refused root's file."""
    if env.get(ENV_LOCK_FILE):
        return Path(env[ENV_LOCK_FILE])
    if is_root():
        for directory in ("/run/lock", "/var/lock"):
            if os.path.isdir(directory) and os.access(directory, os.W_OK):
                return Path(directory) / LOCK_NAME
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime) and os.access(runtime, os.W_OK):
        return Path(runtime) / LOCK_NAME
    return log_dir(env) / LOCK_NAME


# --- validation -----------------------------------------------------------------------------------

# Paths go into shell snippets verbatim; refusing odd characters beats quoting them for every shell.
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+@-]*$")
UNIT_NAME = re.compile(r"^[A-Za-z0-9@._:-]+$")

# Pairs of options that cannot be given together (field names; shown as --field-name).
CONFLICTS = (
    ("tarball", "url"),
    ("prefix", "prefix_root"),
    ("profile_file", "no_profile"),
    ("artifact", "tarball"),
    ("artifact", "url"),
    ("artifact", "version"),
    ("artifact", "sha3_256"),
    ("artifact", "mirror"),
    ("rpm", "artifact"),
    ("rpm", "tarball"),
    ("rpm", "url"),
    ("rpm", "version"),
    ("rpm", "sha3_256"),
    ("rpm", "mirror"),
    ("rpm_package", "rpm"),
    ("rpm_package", "artifact"),
    ("rpm_package", "tarball"),
    ("rpm_package", "url"),
    ("rpm_package", "version"),
    ("rpm_package", "sha3_256"),
    ("rpm_package", "sha256"),
    ("rpm_package", "mirror"),
    ("versions", "remove_all"),
)
CONFLICT_HINTS = {
    ("prefix", "prefix_root"): "--prefix installs exactly there, --prefix-root keeps versions "
    "side by side under `current`: pass one of them",
    ("versions", "remove_all"): "name the versions to remove, or pass --all alone",
    ("rpm_package", "sha256"): "dnf checks a package from a repository against the "
    "repository's metadata (and its gpg key where gpgcheck=1): drop --sha256",
}


def flag(field_name: str) -> str:
    """The option a field of Options comes from: prefix_root -> --prefix-root."""
    special = {"remove_all": "--all", "versions": "VERSION"}
    return special.get(field_name) or "--" + field_name.replace("_", "-")


def check_safe_path(path: Path, what: str) -> None:
    if not SAFE_PATH.match(str(path)):
        raise UsageError(
            f"{what} {str(path)!r} must be an absolute path of letters, digits and ._/+@-",
            hint="choose a plain path such as /opt/sqlite",
        )


def unit_base_name(name: str) -> str:
    """`myapp` or `myapp.service` -> `myapp`; anything that is not a unit name: UsageError."""
    base = name[: -len(".service")] if name.endswith(".service") else name
    if not base or not UNIT_NAME.match(base) or base.startswith("."):
        raise UsageError(
            f"--systemd-unit {name!r} is not a unit name",
            hint="pass the service name, e.g. --systemd-unit myapp",
        )
    return base


NOT_HTTP_HINT = (
    "for a local file use --tarball FILE (with --sha3-256/--sha256 if its name is not a release's)"
)


def not_http_url(value: str, option: str) -> Optional[str]:
    """What is wrong with `value` as an http(s) URL given by `option`; None when nothing is."""
    parsed = urlparse(value)
    if parsed.scheme.lower() not in ("http", "https") or not parsed.netloc:
        return f"{option} {value!r} is not an http:// or https:// URL"
    return None


def check_http_url(value: str, option: str) -> None:
    problem = not_http_url(value, option)
    if problem is not None:
        raise UsageError(problem, hint=NOT_HTTP_HINT)


def _check_version(value: str, option: str) -> None:
    from sqlite_provision.versions import parse_version

    try:
        parse_version(value)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc.message}", hint="pass a version such as 3.46.1") from None


def _given(options: Options) -> FrozenSet[str]:
    """The fields the user gave: those click saw on the command line, and those whose value
    can only have come from the user."""
    return frozenset(
        options.given
        | {
            name
            for name in (
                "tarball",
                "url",
                "artifact",
                "rpm",
                "rpm_package",
                "prefix",
                "env_file",
                "versions",
            )
            if getattr(options, name)
        }
    )


def _check_conflicts(given: FrozenSet[str]) -> None:
    for first, second in CONFLICTS:
        if first in given and second in given:
            raise UsageError(
                f"{flag(first)} and {flag(second)} are mutually exclusive",
                hint=CONFLICT_HINTS.get((first, second), "pass one of them"),
            )


def _check_versions(options: Options, given: FrozenSet[str]) -> None:
    if options.version == LATEST and (options.tarball or options.url):
        raise UsageError(
            "--version latest reads the download page; it cannot name a --tarball or --url",
            hint="pass --version X.Y.Z, or drop it",
        )
    if (options.version or "version" in given) and options.version != LATEST:
        _check_version(options.version, "--version")
    if options.min_version == LATEST:
        raise UsageError(
            "--min-version must be a version such as 3.35.0, not `latest`",
            hint="pass the lowest version your application needs, e.g. --min-version 3.35.0",
        )
    _check_version(options.min_version, "--min-version")
    for version in options.versions:
        _check_version(version, "VERSION")


def _normalized_hashes(options: Options) -> Dict[str, Any]:
    """--sha3-256 and --sha256 as lower-case hex; ChecksumError for a malformed one."""
    from sqlite_provision.digests import parse_checksum

    hashes: Dict[str, Any] = {}
    for algorithm in ("sha3_256", "sha256"):
        value = getattr(options, algorithm)
        # `is not None`: an empty --sha256 "" is a bad hash, not "no hash".
        if value is not None:
            hashes[algorithm] = parse_checksum(algorithm, value).hexdigest
    return hashes


def _check_names(options: Options) -> None:
    """The URLs, the compat mode, the feature names, the systemd units and --rpm-package's name."""
    from sqlite_provision.recipe.features import check_compat, enable_option

    for value, option in ((options.url, "--url"), (options.mirror, "--mirror")):
        if value is not None:
            check_http_url(value, option)
    check_compat(options.compat)
    for name in options.enable:
        enable_option(name)
    for unit in options.systemd_units:
        unit_base_name(unit)
    if options.rpm_package is not None:
        from sqlite_provision.recipe.rpmspec import version_of_package

        version_of_package(options.rpm_package)


_PATH_FIELDS = (
    "prefix",
    "prefix_root",
    "profile_file",
    "tarball",
    "env_file",
    "artifact",
    "artifact_out",
    "rpm",
    "rpm_out",
)
# The paths the tool writes or names in the files it writes: plain characters only.
_SAFE_PATH_FIELDS = ("prefix", "prefix_root", "profile_file", "env_file")


def _absolute_paths(options: Options) -> Dict[str, Any]:
    """The path fields the user gave, made absolute, those the tool writes checked safe."""
    paths: Dict[str, Any] = {}
    for name in _PATH_FIELDS:
        value = getattr(options, name)
        if value is not None:
            paths[name] = Path(os.path.abspath(str(value)))
    for name in _SAFE_PATH_FIELDS:
        if name in paths:
            check_safe_path(paths[name], flag(name))
    return paths


def _absolute_venvs(options: Options) -> Tuple[Path, ...]:
    venvs = tuple(Path(os.path.abspath(str(v))) for v in options.venvs)
    for venv in venvs:
        check_safe_path(venv, "--venv")
    return venvs


def validate(options: Options) -> Options:
    """Check every piece of user input, alone and against the others; return the options with
    their paths made absolute and their hashes normalized. Raises UsageError (exit 2), or
    ChecksumError (exit 4) for a malformed hash."""
    # The helpers import digests and recipe/ where they need them: the CLI imports this module
    # for --help, which must stay fast.
    given = _given(options)
    _check_conflicts(given)
    _check_versions(options, given)
    hashes = _normalized_hashes(options)
    _check_names(options)
    paths = _absolute_paths(options)
    venvs = _absolute_venvs(options)
    return replace(options, given=given, venvs=venvs, **paths, **hashes)
