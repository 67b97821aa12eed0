"""Activation: the files that put the new library on LD_LIBRARY_PATH for the processes that need
it, rendered from templates/ with Jinja, written atomically and recorded for `uninstall --all`.

The profile snippet (and its csh twin) reaches login shells; services, cron, sudo and Ansible
tasks never read /etc/profile.d, hence the systemd drop-ins, the env file and (opt-in, after the
smoke test) ld.so.conf.d.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from sqlite_provision import __version__
from sqlite_provision.config import Layout, check_safe_path, csh_twin, unit_base_name
from sqlite_provision.files import (
    make_parents,
    read_bytes,
    remove_empty,
    snapshot_file,
    write_atomic,
)
from sqlite_provision.host.venvs import Venv
from sqlite_provision.steps.base import Argv, RunState, Step
from sqlite_provision.steps.selinux import RELABEL_HINT, relabel_argv
from sqlite_provision.store.records import (
    Command,
    ld_so_conf_followup,
    read_record,
    read_selinux_rule,
    systemd_followup,
    write_record,
)

TEMPLATE_NAMES = (
    "profile.sh.j2",
    "profile.csh.j2",
    "systemd-dropin.conf.j2",
    "env-file.j2",
    "ld.so.conf.j2",
    "venv-hook.pth.j2",
)
LD_SO_CONF_NAME = "sqlite-provision.conf"
DROPIN_NAME = "sqlite-provision.conf"
Templates = Mapping[str, str]


def load_templates() -> Dict[str, str]:
    """The templates' text, read once (from the package, a zipapp or the checkout)."""
    from sqlite_provision.files import package_data

    return {name: package_data("templates/" + name).decode("utf-8") for name in TEMPLATE_NAMES}


def render(templates: Templates, name: str, **values: str) -> str:
    """Render a template from its text: no I/O. Paths in it were checked (SAFE_PATH)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.DictLoader(dict(templates)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - shell text, not HTML; inserted paths are checked
    )
    return env.get_template(name).render(tool_version=__version__, **values)


# The venv hook's one line puts a finder first on sys.meta_path. It costs next to nothing at
# start-up: what it does is a string compiled only when `_sqlite3` is first imported. Then it
# takes every such finder off the path (a venv whose lib64 links to lib reads its site-packages
# twice) and loads the library by its absolute path with RTLD_GLOBAL: _sqlite3's
# libsqlite3.so.0 then resolves, by its SONAME, to the library already loaded. Any failure leaves
# the import to run as if there were no hook. eval(compile(...)), not exec, so that Python 2.7,
# whose exec is a statement, reads the line too; it asks find_module, 3.4+ find_spec.
VENV_PRELOAD = """\
try:
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_SqliteProvisionHook"]
    import ctypes
    ctypes.CDLL("%s", mode=ctypes.RTLD_GLOBAL)
except Exception:
    pass
"""
VENV_HOOK_LINE = (
    'import sys; sys.meta_path.insert(0, type("_SqliteProvisionHook", (object,), dict.fromkeys('
    '("find_spec", "find_module"), lambda self, name, path=None, target=None: (name == '
    '"_sqlite3" and eval(compile(%r, "sqlite-provision-hook", "exec"), {"sys": sys})) '
    "or None))())"
)


def render_venv_hook(templates: Templates, library: Path) -> str:
    check_safe_path(library, "library")
    line = VENV_HOOK_LINE % (VENV_PRELOAD % library)
    return render(templates, "venv-hook.pth.j2", library=str(library), line=line)


def render_profile(templates: Templates, lib_dir: Path, sqlite_version: str) -> str:
    check_safe_path(lib_dir, "library directory")
    return render(templates, "profile.sh.j2", lib_dir=str(lib_dir), sqlite_version=sqlite_version)


@dataclass(frozen=True)
class WriteActivation(Step):
    """Write one activation file atomically, give it the SELinux label of its place (`relabel`,
    where SELinux is enabled), run its follow-up commands (daemon-reload, ldconfig), and undo
    both: the old file comes back with its own mode and owner."""

    path: Path
    content: str
    lib_dir: Path
    name: str = "activate"
    purpose: str = "prepend {lib} to LD_LIBRARY_PATH"
    after: Tuple[Command, ...] = ()
    mode: int = 0o644
    relabel: bool = False
    changes_host = True

    def describe(self) -> str:
        return (
            f"write {self.path} (mode {self.mode:04o}) to {self.purpose.format(lib=self.lib_dir)}"
        )

    def commands(self) -> List[Argv]:
        return ([relabel_argv(self.path)] if self.relabel else []) + [list(a) for a in self.after]

    def is_satisfied(self, state: RunState) -> Optional[str]:
        if read_bytes(self.path) == self.content.encode("utf-8"):
            return f"{self.path} is already up to date"
        return None

    def run(self, state: RunState) -> str:
        existed = self.path.exists()
        put_back = snapshot_file(self.path)
        created = make_parents(self.path.parent)
        write_atomic(self.path, self.content.encode("utf-8"), self.mode)

        def undo() -> None:
            put_back()
            remove_empty(created)
            self.run_after(state)

        state.undo.append((f"restore {self.path}", undo))
        if self.relabel:
            state.runner.run(relabel_argv(self.path), what="restorecon", hint=RELABEL_HINT)
        self.run_after(state)
        return "{} {}".format("replaced" if existed else "wrote", self.path)

    def run_after(self, state: RunState) -> None:
        for argv in self.after:
            state.runner.run(list(argv), what=argv[0])


@dataclass(frozen=True)
class WriteProfile(WriteActivation):
    name: str = "profile"


@dataclass(frozen=True)
class RecordActivation(Step):
    """List the activation files in the prefix root, so that `uninstall --all` removes exactly
    those (and only while they still carry our marker)."""

    record: Path
    files: Tuple[str, ...]
    selinux_rule: Tuple[Tuple[str, str], ...] = ()  # the equivalence rule, and who added it
    name = "record-activation"

    def describe(self) -> str:
        rule = " and who added the SELinux rule" if self.selinux_rule else ""
        return f"list the activation files{rule} in {self.record}"

    def is_satisfied(self, state: RunState) -> Optional[str]:
        if not set(self.files) <= set(read_record(self.record)):
            return None
        if self.selinux_rule and read_selinux_rule(self.record) is None:
            return None
        return f"{self.record} already lists them"

    def run(self, state: RunState) -> str:
        put_back = snapshot_file(self.record)
        write_record(self.record, list(self.files), dict(self.selinux_rule) or None)
        state.undo.append((f"restore {self.record}", put_back))
        return f"{len(self.files)} file(s) listed"


def profile_steps(
    templates: Templates, layout: Layout, sqlite_version: str
) -> List[WriteActivation]:
    """The sh snippet and its csh twin, for login shells."""
    if layout.profile_file is None:
        return []
    lib = layout.active_lib_dir
    return [
        WriteProfile(layout.profile_file, render_profile(templates, lib, sqlite_version), lib),
        WriteActivation(
            csh_twin(layout.profile_file),
            render(templates, "profile.csh.j2", lib_dir=str(lib)),
            lib,
            name="profile-csh",
            purpose="do the same for csh/tcsh login shells",
        ),
    ]


def service_steps(
    templates: Templates,
    units: Sequence[str],
    env_file: Optional[Path],
    layout: Layout,
    units_dir: Path,
    systemd_running: bool,
) -> List[WriteActivation]:
    """Drop-ins (for each of `units`) and the env file: written before the smoke test, like
    the profile."""
    lib = layout.active_lib_dir
    steps: List[WriteActivation] = []
    reload = systemd_followup(units_dir, systemd_running)
    for index, name in enumerate(units):
        unit = unit_base_name(name)
        steps.append(
            WriteActivation(
                units_dir / f"{unit}.service.d" / DROPIN_NAME,
                render(templates, "systemd-dropin.conf.j2", lib_dir=str(lib), unit=unit),
                lib,
                name="systemd",
                purpose=f"give {unit}.service LD_LIBRARY_PATH={{lib}}",
                after=reload if index == len(units) - 1 else (),
            )
        )
    if env_file is not None:
        steps.append(
            WriteActivation(
                env_file,
                render(templates, "env-file.j2", lib_dir=str(lib)),
                lib,
                name="env-file",
                purpose="hold LD_LIBRARY_PATH={lib} for EnvironmentFile= or cron",
            )
        )
    return steps


def venv_steps(templates: Templates, venvs: Sequence[Venv], lib_dir: Path) -> List[WriteActivation]:
    """A hook in each venv's site-packages: its pythons load the library by its absolute path,
    through `current`, so that an upgrade or a rollback moves every bound venv with it."""
    library = lib_dir / "libsqlite3.so.0"
    return [
        WriteActivation(
            venv.hook,
            render_venv_hook(templates, library),
            lib_dir,
            name="venv",
            purpose=f"bind the venv {venv.path}: its pythons preload {library}",
        )
        for venv in venvs
    ]


def ld_so_conf_step(templates: Templates, layout: Layout, conf_dir: Path) -> WriteActivation:
    """Opt-in and placed after the smoke test: it reaches every process, boot included."""
    return WriteActivation(
        conf_dir / LD_SO_CONF_NAME,
        render(templates, "ld.so.conf.j2", lib_dir=str(layout.active_lib_dir)),
        layout.active_lib_dir,
        name="ld-so-conf",
        purpose="put {lib} in the loader's cache for EVERY process (--ld-so-conf)",
        after=ld_so_conf_followup(conf_dir),
    )
