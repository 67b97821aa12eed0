"""The RHEL look-alikes of support.look_alike as podman roots, for the fleet tier
(tests/integration/test_fleet.py, bench/fleet.py):

    tree = look_alike_tree("rhel8")     # build/look-alike/trees/rhel8-KEY/, made once
    podman run -d --rootfs TREE:O ...   # support.fleet.Containers

| name  | base (glibc)                     | system SQLite | python3 (the tool's) | Ansible's python |
|-------|----------------------------------|---------------|----------------------|------------------|
| rhel7 | Debian 12, mmdebstrap (2.36)     | 3.7.17        | CPython 3.6.15       | the base's 3.11  |
| rhel8 | Debian 12, mmdebstrap (2.36)     | 3.26.0        | CPython 3.6.15       | the base's 3.11  |
| rhel9 | Debian 11, mmdebstrap (2.31)     | 3.34.1        | 3.9.2, the base's    | 3.9.2            |

The RHEL 7 and 8 look-alikes need a Debian 12 base: pyenv's CPython 3.6.15 and the system
libraries built on this machine need glibc 2.34. ansible-core 2.17 and later run their modules on
python 3.8 or newer only, so those targets give Ansible the base's python3.11 (as a RHEL 8 host
gives it python3.11 from AppStream) while the tool runs on /usr/bin/python3, 3.6.

A tree is `make_look_alike` run on a freshly unpacked base, entered with chroot. podman runs it
with `--rootfs TREE:O`: an overlay whose writes go to podman's storage and vanish with the
container, so the tree is never changed and never imported (an import of such a tree takes
tens of seconds). The key covers the base, the interpreter and the source of every module that
makes the tree, so an edit to any of them makes a new tree; older trees of that name are removed.
"""

# Dict rather than `X | None`: the tests run on Python 3.7 too.

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict

from support import TESTS_DIR
from support.look_alike import (
    CACHE,
    LOOK_ALIKES,
    chroot_runner,
    debian11_tarball,
    debian12_tarball,
    inside,
    make_look_alike,
    prepare_parts,
    unpack,
)
from support.system_sqlite import RELEASES

TREES = CACHE / "trees"
# The modules whose code makes a tree (its key hashes their source).
MAKERS = ("look_alike.py", "look_alike_trees.py", "rhel.py", "rhel_root.py", "system_sqlite.py",
          "pseudo_rhel_image.py")  # fmt: skip
INFO = "look-alike.json"  # beside the tree: what a target of it offers


def base_tarball(name: str) -> Path:
    return debian11_tarball() if LOOK_ALIKES[name].base == "debian11" else debian12_tarball()


def tree_key(name: str, base: Path) -> str:
    spec = LOOK_ALIKES[name]
    sources = [(TESTS_DIR / "support" / module).read_bytes() for module in MAKERS]
    library = RELEASES[spec.system_sqlite].key if spec.build_library else ""
    recipe = json.dumps([name, base.name, spec.python, library])
    digest = hashlib.sha256(recipe.encode())
    for source in sources:
        digest.update(hashlib.sha256(source).digest())
    return digest.hexdigest()[:12]


def look_alike_tree(name: str) -> Path:
    """The tree of look-alike `name`, made once per key under build/look-alike/trees/."""
    base = base_tarball(name)
    key = tree_key(name, base)
    tree = TREES / f"{name}-{key}"
    if (tree.parent / f"{tree.name}.{INFO}").is_file():
        return tree
    TREES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=str(TREES), prefix=f".{name}-") as scratch:
        work = Path(scratch)
        made = unpack(base, work / "tree")
        spec = LOOK_ALIKES[name]
        parts = prepare_parts(spec, work / "parts", debian11=made)
        base_python = "/usr/bin/" + os.readlink(str(inside(made, "/usr/bin/python3")))
        enter = chroot_runner(made)
        make_look_alike(made, spec, parts, enter)
        info = {
            "name": name,
            "major": spec.major,
            "system_sqlite": spec.system_sqlite,
            "python": enter(["python3", "-c", "import sys; print(sys.version.split()[0])"]).strip(),
            "ansible_python": base_python if spec.python else "/usr/bin/python3",
            "glibc": enter(["getconf", "GNU_LIBC_VERSION"]).split()[-1],
        }
        for old in TREES.glob(f"{name}-*"):
            if old.is_dir():
                shutil.rmtree(str(old))
            else:
                old.unlink()
        made.rename(tree)
        (tree.parent / f"{tree.name}.{INFO}").write_text(json.dumps(info, indent=1) + "\n")
    return tree


def tree_info(tree: Path) -> Dict[str, object]:
    """What look_alike_tree recorded beside `tree`: name, major, system_sqlite, python (the
    tool's python3), ansible_python, glibc."""
    data = json.loads((tree.parent / f"{tree.name}.{INFO}").read_text())
    assert isinstance(data, dict)
    return data
