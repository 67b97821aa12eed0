"""The fleet tier's machinery (tests/integration/test_fleet.py, bench/fleet.py): podman
containers on the RHEL look-alike trees (support.look_alike_trees) as targets and builders, real
ansible-playbook reaching them through the `containers.podman.podman` connection plugin, and the
tier's one `fleet:` line.

The plugin is in the containers.podman collection, which ansible-core does not ship and PyPI has
only inside the `ansible` package (a 54 MB wheel that installs 21,000 files, 210 MB). So
`podman_collection()` downloads that wheel once, pinned by version and sha256 with pip (the
registry client), and unpacks its ansible_collections/containers/podman/ (74 files) into the
test cache, for ANSIBLE_COLLECTIONS_PATH; a fresh CI machine gets it on its first run.
"""

# Dict/List/Optional rather than `X | None`: the tests run on Python 3.7 too.

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Dict, List, Mapping, Optional, Sequence, Type

from support import REPO_ROOT, unavailable

FLEET_PLAYBOOK = REPO_ROOT / "examples" / "ansible" / "fleet.yml"

# ansible 12.3.0 requires ansible-core ~= 2.19.5 and carries containers.podman 1.18.0.
ANSIBLE_RELEASE = "12.3.0"
ANSIBLE_SHA256 = "cd156f82fa87f7a899212b0efa9f7ca3a24d609212de9f78428a572eb01e5414"
COLLECTION = "ansible_collections/containers/podman/"

RECAP = re.compile(r"^(\S+)\s+:\s+(ok=\d+.*)$", re.MULTILINE)


def podman_collection(cache: Path) -> Path:
    """A collections path (for ANSIBLE_COLLECTIONS_PATH) holding containers.podman, unpacked
    once into `cache` from the pinned `ansible` wheel."""
    root = cache / f"ansible-{ANSIBLE_RELEASE}-collections"
    if (root / COLLECTION / "MANIFEST.json").is_file():
        return root
    with tempfile.TemporaryDirectory(dir=str(cache)) as scratch:
        work = Path(scratch)
        requirements = work / "requirements.txt"
        requirements.write_text(f"ansible=={ANSIBLE_RELEASE} --hash=sha256:{ANSIBLE_SHA256}\n")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes",
             "--disable-pip-version-check", "-r", str(requirements), "-d", str(work / "dl")],
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        wheels = sorted((work / "dl").glob(f"ansible-{ANSIBLE_RELEASE}-*.whl"))
        if proc.returncode != 0 or not wheels:
            unavailable(
                f"cannot download ansible {ANSIBLE_RELEASE} (for its containers.podman "
                f"collection) from PyPI: {proc.stderr.strip()[-500:]}"
            )
        unpacked = work / "collections"
        with zipfile.ZipFile(str(wheels[0])) as wheel:
            for name in wheel.namelist():
                if not name.startswith(COLLECTION) or name.endswith("/"):
                    continue
                target = unpacked / name
                if ".." in Path(name).parts:
                    raise RuntimeError(f"unsafe member {name} in {wheels[0].name}")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(wheel.read(name))
        if not (unpacked / COLLECTION / "plugins" / "connection" / "podman.py").is_file():
            raise RuntimeError(f"no containers.podman connection plugin in {wheels[0].name}")
        try:
            unpacked.rename(root)
        except OSError:
            if not (root / COLLECTION / "MANIFEST.json").is_file():  # not a concurrent winner
                raise
    return root


def ansible_playbook() -> str:
    beside = Path(os.path.abspath(sys.executable)).parent / "ansible-playbook"
    found = str(beside) if beside.exists() else shutil.which("ansible-playbook")
    if not found:
        unavailable("ansible-playbook is not installed (pip install ansible-core)")
    return str(found)


@dataclass
class Play:
    """One ansible-playbook run: its output, wall seconds, and the recap per host."""

    proc: subprocess.CompletedProcess  # type: ignore[type-arg]
    seconds: float

    @property
    def recap(self) -> Dict[str, Dict[str, int]]:
        found = RECAP.findall(self.proc.stdout)
        assert found, self.describe()
        return {
            host: {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", counts)}
            for host, counts in found
        }

    def failures(self, host: str) -> List[str]:
        """The `fatal: [HOST]: FAILED! => ...` lines of `host`."""
        return [
            line
            for line in self.proc.stdout.splitlines()
            if line.startswith((f"fatal: [{host}]", f"fatal: [{host} ->"))
        ]

    def task(self, name: str) -> str:
        """What the play printed under the task `name`, every time it ran (once per batch)."""
        parts = self.proc.stdout.split("\nTASK [")
        return "\n".join(part for part in parts if part.split("]", 1)[0].endswith(f" : {name}"))

    def summary(self) -> List[str]:
        """The lines of the fleet.yml summary task's message."""
        match = re.search(
            r"TASK \[sqlite_provision_fleet : The fleet, host by host\].*?"
            r'"msg": (\[.*?\n    \])',
            self.proc.stdout,
            re.DOTALL,
        )
        assert match, self.describe()
        lines = json.loads(match.group(1))
        assert isinstance(lines, list)
        return [str(line) for line in lines]

    def describe(self) -> str:
        p = self.proc
        return f"exit {p.returncode}\n--- stdout ---\n{p.stdout}\n--- stderr ---\n{p.stderr}"


def run_playbook(
    inventory: Path,
    extra_vars: Mapping[str, object],
    env: Mapping[str, str],
    base: Path,
    *args: str,
    playbook: Path = FLEET_PLAYBOOK,
) -> Play:
    vars_file = base / f"vars-{time.monotonic_ns()}.json"
    vars_file.write_text(json.dumps(extra_vars), encoding="utf-8")
    started = time.monotonic()
    proc = subprocess.run(
        [ansible_playbook(), "-i", str(inventory), str(playbook), "-e", f"@{vars_file}", *args],
        env=dict(env),
        cwd=str(base),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return Play(proc, time.monotonic() - started)


def ansible_env(podman_env: Mapping[str, str], collections: Path, base: Path) -> Dict[str, str]:
    """The environment of ansible-playbook: podman's settings (CONTAINERS_CONF), the collection,
    and nothing of the tool's or of another ansible configuration."""
    env = {
        key: value
        for key, value in podman_env.items()
        if not key.startswith(("SQLITE_PROVISION_", "ANSIBLE_")) and key != "LD_LIBRARY_PATH"
    }
    env.update(
        ANSIBLE_HOME=str(base / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(base / "ansible-tmp"),
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_STDOUT_CALLBACK="default",
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    return env


@dataclass(frozen=True)
class Target:
    """A container: its name, its root (a look-alike tree, support.look_alike_trees) and its
    network: "none", or "host" for a builder, which downloads from the loopback mirror."""

    name: str
    tree: Path
    network: str = "none"


class Containers:
    """Containers whose roots are look-alike trees (`podman run --rootfs TREE:O`: each its own
    overlay, so its /opt, /etc/profile.d and python3 are its own and the tree is never changed),
    removed on close."""

    def __init__(self, env: Mapping[str, str], targets: Sequence[Target]) -> None:
        self.env = dict(env)
        self.targets = list(targets)

    @property
    def names(self) -> List[str]:
        return [target.name for target in self.targets]

    def __enter__(self) -> Containers:
        try:
            for target in self.targets:
                self.podman("rm", "-f", "-t", "0", target.name)
                started = self.podman(
                    "run", "-d", f"--network={target.network}", "--name", target.name,
                    "--rootfs", f"{target.tree}:O", "/bin/sleep", "infinity",
                )  # fmt: skip
                if started.returncode != 0:
                    raise RuntimeError(f"podman run {target.name}: {started.stderr}")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def close(self) -> None:
        for name in self.names:
            self.podman("rm", "-f", "-t", "0", name)

    def podman(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        return subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip

    def sh(self, name: str, script: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        """`sh -c script` in the container, as root, with podman's default environment."""
        return self.podman("exec", name, "sh", "-c", script)


def write_inventory(path: Path, groups: Mapping[str, Mapping[str, Mapping[str, object]]]) -> Path:
    """A YAML inventory (JSON is YAML) of podman containers: each group holds its hosts with
    their own variables (ansible_host: the container; ansible_python_interpreter: the python
    Ansible's modules run on there); every host is reached by the containers.podman.podman
    connection and is root already (no become)."""
    inventory = {
        "all": {
            "children": {
                group: {"hosts": {name: dict(values) for name, values in hosts.items()}}
                for group, hosts in groups.items()
            },
            "vars": {
                "ansible_connection": "containers.podman.podman",
                "ansible_become": False,
            },
        }
    }
    path.write_text(json.dumps(inventory, indent=1), encoding="utf-8")
    return path


@dataclass
class FleetTally:
    """What the fleet line reports; None until measured."""

    targets: Optional[int] = None
    groups: Optional[int] = None
    builds: Optional[int] = None
    changed_first: Optional[int] = None
    changed_second: Optional[int] = None
    compilers: Optional[int] = None
    install_seconds: List[float] = field(default_factory=list)

    def line(self) -> str:
        if self.targets is None:
            return ""

        def shown(value: Optional[int]) -> str:
            return "?" if value is None else str(value)

        seconds = f"{statistics.median(self.install_seconds):.2f}" if self.install_seconds else "?"
        return (
            f"fleet: {shown(self.targets)} targets in {shown(self.groups)} groups, "
            f"built {shown(self.builds)} time(s), "
            f"run 1 changed={shown(self.changed_first)}, run 2 changed={shown(self.changed_second)}, "
            f"compilers on targets: {shown(self.compilers)}, per-target install {seconds} s"
        )


FLEET = FleetTally()


def delta_seconds(text: str) -> float:
    """'0:00:01.936730' (a command's delta, as Ansible prints it) -> 1.93673."""
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
