"""Layer 1: the profile snippet (rendered from templates/profile.sh.j2) and the atomic writes.

The snippet is run by real shells and checked by the real shellcheck. Missing tools skip the
test, except under CI=true, where they fail it.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

from sqlite_provision import __version__, files
from sqlite_provision.config import check_safe_path
from sqlite_provision.errors import EXIT_USAGE, UsageError
from sqlite_provision.steps import activation
from support import need_tool

TEMPLATES = activation.load_templates()


def render_profile(lib_dir: Path, sqlite_version: str) -> str:
    return activation.render_profile(TEMPLATES, lib_dir, sqlite_version)


LIB_DIR = Path("/opt/sqlite/current/lib")
VERSION = "3.44.2"
OTHER = "/usr/lib/foo"


@pytest.fixture(params=[VERSION, ""], ids=["pinned-version", "current-link"])
def snippet(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """Both renderings: one naming the version (--prefix) and one for the `current` link."""
    path = tmp_path / "sqlite-provision.sh"
    path.write_text(render_profile(LIB_DIR, str(request.param)), encoding="utf-8")
    return path


def test_rendered_snippet_passes_shellcheck_as_posix_sh(snippet: Path) -> None:
    shellcheck = need_tool("shellcheck")
    result = subprocess.run(
        [shellcheck, "-s", "sh", "--severity=style", str(snippet)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_snippet_names_its_owner_version_and_library() -> None:
    text = render_profile(LIB_DIR, VERSION)
    header = "\n".join(text.splitlines()[:4])
    assert "Managed by sqlite-provision" in header
    assert __version__ in header
    assert f"SQLite {VERSION}" in header
    assert str(LIB_DIR) in text
    assert "{{" not in text and "{%" not in text
    assert text.endswith("\n")
    other = render_profile(Path("/opt/sqlite/3.52.0/lib"), "3.52.0")
    assert "SQLite 3.52.0" in other and "/opt/sqlite/3.52.0/lib" in other
    assert str(LIB_DIR) not in other


def test_snippet_for_the_current_link_is_managed_but_names_no_version() -> None:
    text = render_profile(LIB_DIR, "")
    header = "\n".join(text.splitlines()[:4])
    assert "Managed by sqlite-provision" in header
    assert __version__ in header
    assert "SQLite 3." not in text
    assert "{{" not in text and "{%" not in text
    assert text.count(str(LIB_DIR)) == render_profile(LIB_DIR, VERSION).count(str(LIB_DIR))


def run_sourced(shell: List[str], snippet: Path, value: Optional[str], times: int = 2) -> str:
    """Source the snippet `times` times in `shell` (with set -eu) and return LD_LIBRARY_PATH as a
    child process sees it, which proves it is exported."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": "/nonexistent"}
    if value is not None:
        env["LD_LIBRARY_PATH"] = value
    script = 'set -eu\n. "$1"\n' * times + "exec env\n"
    result = subprocess.run(
        [*shell, "-c", script, "sh", str(snippet)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = [line for line in result.stdout.splitlines() if line.startswith("LD_LIBRARY_PATH=")]
    assert len(lines) == 1, f"LD_LIBRARY_PATH not exported: {result.stdout!r}"
    return lines[0][len("LD_LIBRARY_PATH=") :]


SHELLS = {
    "dash": ["dash"],
    "bash": ["bash", "--noprofile", "--norc"],
    "bash-posix": ["bash", "--posix", "--noprofile", "--norc"],
}


@pytest.fixture(params=sorted(SHELLS))
def shell(request: pytest.FixtureRequest) -> Iterator[List[str]]:
    argv = list(SHELLS[request.param])
    argv[0] = need_tool(argv[0])
    yield argv


def assert_clean_path(value: str, originals: List[str]) -> None:
    elements = value.split(":")
    assert "" not in elements, f"empty element in {value!r}"
    assert not value.startswith(":") and not value.endswith(":") and "::" not in value
    assert elements[0] == str(LIB_DIR), value
    assert elements.count(str(LIB_DIR)) == 1, value
    assert elements[1:] == originals, value


@pytest.mark.parametrize(
    "value, originals",
    [
        pytest.param(None, [], id="unset"),
        pytest.param("", [], id="empty"),
        pytest.param(OTHER, [OTHER], id="one-entry"),
        pytest.param(f"{OTHER}:/usr/lib/bar", [OTHER, "/usr/lib/bar"], id="two-entries"),
        pytest.param(f"{LIB_DIR}:{OTHER}", [OTHER], id="already-first"),
    ],
)
@pytest.mark.parametrize("times", [1, 2])
def test_sourcing_puts_lib_dir_first_once_with_no_empty_element(
    shell: List[str], snippet: Path, value: Optional[str], originals: List[str], times: int
) -> None:
    assert_clean_path(run_sourced(shell, snippet, value, times), originals)


def test_sourcing_in_a_login_like_sh_changes_nothing_else(snippet: Path) -> None:
    """The snippet runs inside every login shell: it must not leave variables or output."""
    dash = need_tool("dash")
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": "/nonexistent", "A": "1"}
    script = 'set > "$2"; . "$1"; set > "$3"'
    before, after = snippet.parent / "before", snippet.parent / "after"
    result = subprocess.run(
        [dash, "-c", script, "sh", str(snippet), str(before), str(after)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    added = set(after.read_text().splitlines()) - set(before.read_text().splitlines())
    assert {line.split("=", 1)[0] for line in added} == {"LD_LIBRARY_PATH"}


# --- write_atomic / restore ----------------------------------------------------------------------


@pytest.fixture
def strict_umask() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def test_write_atomic_gives_0644_under_umask_077(tmp_path: Path, strict_umask: None) -> None:
    target = tmp_path / "profile.d" / "sqlite-provision.sh"
    target.parent.mkdir()
    files.write_atomic(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert mode_of(target) == 0o644
    assert os.listdir(str(target.parent)) == [target.name]


def test_write_atomic_replaces_a_0600_file_with_0644(tmp_path: Path, strict_umask: None) -> None:
    target = tmp_path / "snippet.sh"
    target.write_bytes(b"old\n")
    os.chmod(str(target), 0o600)
    old_inode = os.stat(str(target)).st_ino
    files.write_atomic(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert mode_of(target) == 0o644
    # A rename, not an in-place rewrite: a shell reading the old file never sees half a file.
    assert os.stat(str(target)).st_ino != old_inode
    assert sorted(os.listdir(str(tmp_path))) == ["snippet.sh"]


def test_write_atomic_honours_an_explicit_mode(tmp_path: Path, strict_umask: None) -> None:
    target = tmp_path / "manifest.json"
    files.write_atomic(target, b"{}", mode=0o640)
    assert mode_of(target) == 0o640


def test_write_atomic_failure_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "snippet.sh"
    target.mkdir()  # os.replace cannot put a file over a directory
    (target / "keep").write_bytes(b"k")
    with pytest.raises(OSError):
        files.write_atomic(target, b"new\n")
    assert sorted(os.listdir(str(tmp_path))) == ["snippet.sh"]
    assert (target / "keep").read_bytes() == b"k"


def test_restore_brings_back_the_previous_bytes(tmp_path: Path, strict_umask: None) -> None:
    target = tmp_path / "snippet.sh"
    previous = b"# someone else's\nexport X=1\n\xff\xfe no trailing newline"
    target.write_bytes(previous)
    saved = files.read_bytes(target)
    assert saved == previous
    files.write_atomic(target, render_profile(LIB_DIR, VERSION).encode())
    assert target.read_bytes() != previous
    files.restore(target, saved)
    assert target.read_bytes() == previous
    assert mode_of(target) == 0o644
    assert os.listdir(str(tmp_path)) == ["snippet.sh"]


def test_restore_removes_a_file_that_was_absent(tmp_path: Path) -> None:
    target = tmp_path / "snippet.sh"
    saved = files.read_bytes(target)
    assert saved is None
    files.write_atomic(target, b"new\n")
    assert target.exists()
    files.restore(target, saved)
    assert not os.path.lexists(str(target))
    files.restore(target, saved)  # already absent: still fine
    assert os.listdir(str(tmp_path)) == []


# --- check_safe_path ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/opt/my sqlite/lib",
        "/opt/$HOME/lib",
        "/opt/sqlite/${X}",
        "/opt/`id`/lib",
        "/opt/sqlite;rm -rf/lib",
        '/opt/"q"/lib',
        "/opt/sqlite\n/lib",
        "/opt/sqlite:/tmp",
        "opt/sqlite/lib",
    ],
)
def test_check_safe_path_refuses_shell_special_paths(path: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_safe_path(Path(path), "library directory")
    assert caught.value.exit_code == EXIT_USAGE
    with pytest.raises(UsageError):
        render_profile(Path(path), VERSION)


@pytest.mark.parametrize(
    "path", ["/opt/sqlite/current/lib", "/opt/sqlite/3.44.2/lib", "/srv/a_b-c+d@e/lib"]
)
def test_check_safe_path_accepts_plain_paths(path: str) -> None:
    check_safe_path(Path(path), "library directory")
    assert path in render_profile(Path(path), VERSION)
