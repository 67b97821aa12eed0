"""The autosetup-era make overlay that compiles shell.c beside sqlite3.c: applied only where the
Makefile has the rule it replaces, and what make then runs (make -n on a real configured tree)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sqlite_provision.recipe import flags as build
from sqlite_provision.source.archive import extract
from support import need_tool

RULE_3520 = (
    "sqlite3$(T.exe): $(TOP)/shell.c $(sqlite3-shell-deps.$(ENABLE_STATIC_SHELL))\n"
    "\t$(CC) -o $@ \\\n"
    "\t\t$(TOP)/shell.c $(sqlite3-shell-link-flags.$(ENABLE_STATIC_SHELL)) \\\n"
    "\t\t$(sqlite3-shell-static.flags.$(STATIC_CLI_SHELL)) \\\n"
    "\t\t-I. $(OPT_FEATURE_FLAGS) $(SHELL_OPT) \\\n"
    "\t\t$(CFLAGS) $(CFLAGS.readline) $(CFLAGS.icu) \\\n"
    "\t\t$(LDFLAGS.readline)\n"
)


def test_fits_only_the_rule_it_replaces() -> None:
    assert build.shell_overlay_fits(RULE_3520)
    assert not build.shell_overlay_fits(RULE_3520.replace("$(CFLAGS.icu)", "$(CFLAGS.ICU)"))
    assert not build.shell_overlay_fits("sqlite3$(EXEEXT): $(sqlite3_OBJECTS)\n")  # automake era


def test_make_argv() -> None:
    assert build.make_argv(2) == ["make", "-j2"]
    assert build.make_argv(4, overlay=True) == [
        "make", "-j4", "-f", "Makefile", "-f", build.SHELL_OVERLAY_NAME,
    ]  # fmt: skip


def test_make_n_on_the_real_352_tree(shared_tarballs: dict, tmp_path: Path) -> None:
    """Configured for real, make -n with the overlay compiles shell.c into its own object that
    does not wait for libsqlite3.so, and links the shell to the shared library."""
    need_tool("make")
    need_tool("cc")
    # The tool's own safe extraction: tarfile's filter= is missing from some Pythons (3.11.2).
    src = extract(Path(shared_tarballs["3.52.0"]["path"]), tmp_path)
    subprocess.run(["./configure", "--disable-static", "--disable-static-shell", "--soname=legacy"],
                   cwd=str(src), check=True, capture_output=True)  # fmt: skip
    assert build.shell_overlay_fits((src / "Makefile").read_text())
    (src / build.SHELL_OVERLAY_NAME).write_text(build.SHELL_OVERLAY)
    plan = subprocess.run([*build.make_argv(2, overlay=True), "-n"], cwd=str(src),
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    compile_line = next(ln for ln in plan.splitlines() if "sqlite-provision-shell.o" in ln)
    assert compile_line.split()[:4] == ["cc", "-c", "-o", "sqlite-provision-shell.o"]
    link = plan[plan.index("-o sqlite3 sqlite-provision-shell.o") :]
    assert "-lsqlite3" in link.split("\n")[0]
    # The shell object needs only shell.c: make may build it before libsqlite3.so.
    deps = subprocess.run([*build.make_argv(2, overlay=True), "-p", "-n"], cwd=str(src),
                          capture_output=True, text=True, check=False).stdout  # fmt: skip
    rule = next(ln for ln in deps.splitlines() if ln.startswith("sqlite-provision-shell.o:"))
    assert "libsqlite3" not in rule
