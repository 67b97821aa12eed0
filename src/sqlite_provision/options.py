"""What the user asked for (`Options`) and where things go on disk (`Layout`), derived in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Tuple

DEFAULT_PREFIX_ROOT = Path("/opt/sqlite")
DEFAULT_PROFILE_FILE = Path("/etc/profile.d/sqlite-provision.sh")
DEFAULT_MIN_VERSION = "3.24.0"
MANIFEST_NAME = "sqlite-provision-manifest.json"
CURRENT_LINK_NAME = "current"
PREVIOUS_LINK_NAME = "previous"

ENV_MIRROR = "SQLITE_PROVISION_MIRROR"
ENV_CACHE_DIR = "SQLITE_PROVISION_CACHE_DIR"
ENV_LOG_DIR = "SQLITE_PROVISION_LOG_DIR"
ENV_OS_ROOT = "SQLITE_PROVISION_OS_ROOT"
ENV_SYSTEMD_DIR = "SQLITE_PROVISION_SYSTEMD_DIR"
ENV_LD_SO_CONF_DIR = "SQLITE_PROVISION_LD_SO_CONF_DIR"
DEFAULT_SYSTEMD_DIR = Path("/etc/systemd/system")
DEFAULT_LD_SO_CONF_DIR = Path("/etc/ld.so.conf.d")
ACTIVATION_RECORD = ".sqlite-provision-activation.json"


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
    install_deps: bool = True
    force: bool = False
    dry_run: bool = False
    json: bool = False
    env_cflags: str = field(default="")
    compat: str = "host"  # host | rhel | none
    enable: Tuple[str, ...] = ()
    allow_abi_loss: bool = False
    keep_failed: bool = False
    lock_timeout: float = 600.0
    systemd_units: Tuple[str, ...] = ()
    env_file: Optional[Path] = None
    ld_so_conf: bool = False
    artifact: Optional[Path] = None  # install --artifact FILE


@dataclass(frozen=True)
class Layout:
    prefix: Path  # where this version's files live
    current_link: Optional[Path]  # prefix_root/current, or None with an explicit --prefix
    active_lib_dir: Path  # what the snippet puts on LD_LIBRARY_PATH
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


def is_root() -> bool:
    return os.geteuid() == 0


def xdg_dir(env: Mapping[str, str], var: str, fallback: str) -> Path:
    value = env.get(var, "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path(env.get("HOME", "/root")) / fallback


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    if env.get(ENV_CACHE_DIR):
        return Path(env[ENV_CACHE_DIR])
    if is_root():
        return Path("/var/cache/sqlite-provision")
    return xdg_dir(env, "XDG_CACHE_HOME", ".cache") / "sqlite-provision"


def log_dir(env: Mapping[str, str] = os.environ) -> Path:
    if env.get(ENV_LOG_DIR):
        return Path(env[ENV_LOG_DIR])
    if is_root():
        return Path("/var/log/sqlite-provision")
    return xdg_dir(env, "XDG_STATE_HOME", ".local/state") / "sqlite-provision"


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def systemd_dir(env: Mapping[str, str] = os.environ) -> Path:
    return Path(env[ENV_SYSTEMD_DIR]) if env.get(ENV_SYSTEMD_DIR) else DEFAULT_SYSTEMD_DIR


def ld_so_conf_dir(env: Mapping[str, str] = os.environ) -> Path:
    return Path(env[ENV_LD_SO_CONF_DIR]) if env.get(ENV_LD_SO_CONF_DIR) else DEFAULT_LD_SO_CONF_DIR
