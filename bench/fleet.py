"""The fleet flow's cost per target: examples/ansible/fleet.yml over 1 and over 3 targets.

    .venv/bin/python bench/fleet.py [--repeat 3] [--out FILE.json]

As root, on a machine set up for the fleet tier (tests/integration/test_fleet.py: podman, runc,
the pseudo-RHEL 9 image, ansible-core in .venv, the containers.podman collection, the shared
3.44.2 tarball in $SQLITE_PROVISION_TEST_TARBALLS or ../shared/sqlite-tarballs). It reuses the
tier's helpers (tests/support/), builds the pyz, and warms the controller's artifact cache with
one play: that one build (about 15 s at CFLAGS=-O0) is not timed, since every later play of the
fleet skips it. Then, round after round, 1 target then 3 targets, each on fresh containers
(--network=none, no compiler): the wall time of run 1 (ship and install) and of run 2 (nothing
to do). Per added target: (median of 3 - median of 1) / 2, for run 1; the target is 2 s or less.

The targets are podman containers reached by the containers.podman.podman connection, which
runs each module through about five `podman exec` calls (no pipelining): on these 2-core
machines a module costs about 0.35 s per added target, and the play has four per target (facts,
the bundle's stat and unpack, the install). The median wall time of the tool's own install on a
target is reported too. Nothing is asserted; the machine is shared and noisy, so the load
average before and after is printed beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.fleet import (  # noqa: E402
    Containers,
    Play,
    ansible_env,
    delta_seconds,
    podman_collection,
    run_playbook,
    write_inventory,
)
from support.pseudo_rhel_image import (  # noqa: E402
    CONTAINERS_CONF,
    IMAGE,
    cache_dir,
    import_image,
)
from support.pyz import build_pyz  # noqa: E402

VERSION = "3.44.2"
TARBALL = "sqlite-autoconf-3440200.tar.gz"
TARGET_SECONDS = 2.0


def say(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def tarball() -> Path:
    folder = Path(os.environ.get("SQLITE_PROVISION_TEST_TARBALLS") or "../shared/sqlite-tarballs")
    path = (folder if folder.is_absolute() else REPO / folder) / TARBALL
    if not path.is_file():
        sys.exit(f"bench/fleet.py: no {path} (set SQLITE_PROVISION_TEST_TARBALLS)")
    return path


def installs(play: Play) -> List[float]:
    """The tool's install wall time on each target, from the play's summary."""
    text = "\n".join(play.summary())
    return [delta_seconds(s) for s in re.findall(r"installed now in (\S+)$", text, re.M)]


def one_round(
    count: int, tag: str, base: Path, env: Dict[str, str], podman_env: Dict[str, str],
    extra_vars: Dict[str, object],
) -> Dict[str, Any]:  # fmt: skip
    names = [f"sqlite-bench-{os.getpid()}-{tag}-{n}" for n in range(1, count + 1)]
    work = base / f"round-{tag}"
    work.mkdir()
    inventory = write_inventory(work / "inventory.json", {"targets": {n: {} for n in names}})
    with Containers(podman_env, IMAGE, names):
        first = run_playbook(inventory, extra_vars, env, work)
        second = run_playbook(inventory, extra_vars, env, work)
    for play in (first, second):
        if play.proc.returncode != 0:
            sys.exit(f"bench/fleet.py: the play failed\n{play.describe()}")
        if "built now" in "\n".join(play.summary()):
            sys.exit("bench/fleet.py: a timed play built the artifact: the cache was not warm")
    return {
        "targets": count,
        "run1_seconds": round(first.seconds, 2),
        "run2_seconds": round(second.seconds, 2),
        "install_seconds": installs(first),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds of (1 target, 3 targets)")
    parser.add_argument("--out", type=Path, help="write every number as JSON here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/fleet.py: run as root (podman, the build as nobody)")

    base = Path(tempfile.mkdtemp(prefix="sqlite-fleet-bench-"))
    base.chmod(0o755)  # the controller's build runs as nobody, under base/tmp
    (base / "tmp").mkdir(mode=0o755)
    conf = base / "containers.conf"
    conf.write_text(CONTAINERS_CONF, encoding="utf-8")
    podman_env = dict(os.environ, CONTAINERS_CONF=str(conf))
    say("image, pyz and collection")
    import_image(podman_env, {})
    pyz = build_pyz(REPO, base / "dist")
    env = ansible_env(podman_env, podman_collection(cache_dir()), base)
    extra_vars: Dict[str, object] = {
        "sqlite_provision_pyz": str(pyz),
        "sqlite_provision_fleet_version": VERSION,
        "sqlite_provision_fleet_build_args": ["--tarball", str(tarball())],
        "sqlite_provision_fleet_build_environment": {
            "CFLAGS": "-O0",
            "TMPDIR": str(base / "tmp"),
            "SQLITE_PROVISION_LOG_DIR": str(base / "build-log"),
            "SQLITE_PROVISION_CACHE_DIR": str(base / "tool-cache"),
        },
        "sqlite_provision_fleet_cache": str(base / "artifacts"),
    }
    say("warming the controller's artifact cache (one build, not timed)")
    warm = base / "warm"
    warm.mkdir()
    inventory = write_inventory(warm / "inventory.json", {"targets": {"sqlite-bench-warm": {}}})
    with Containers(podman_env, IMAGE, ["sqlite-bench-warm"]):
        play = run_playbook(inventory, extra_vars, env, warm)
    if play.proc.returncode != 0:
        sys.exit(f"bench/fleet.py: the warm-up play failed\n{play.describe()}")

    load_before = os.getloadavg()
    rounds: List[Dict[str, Any]] = []
    for n in range(args.repeat):
        for count in (1, 3):
            say(f"round {n + 1}/{args.repeat}: {count} target(s)")
            rounds.append(one_round(count, f"{n}-{count}", base, env, podman_env, extra_vars))
            say(f"  run 1 {rounds[-1]['run1_seconds']}s, run 2 {rounds[-1]['run2_seconds']}s")
    load_after = os.getloadavg()

    def median(count: int, key: str) -> float:
        return statistics.median(r[key] for r in rounds if r["targets"] == count)

    per_added = {
        key: (median(3, key) - median(1, key)) / 2 for key in ("run1_seconds", "run2_seconds")
    }
    install = statistics.median(s for r in rounds for s in r["install_seconds"])
    result = {
        "started_load": load_before,
        "ended_load": load_after,
        "rounds": rounds,
        "median": {f"{c}_targets_{k}": median(c, k) for c in (1, 3) for k in ("run1_seconds", "run2_seconds")},
        "per_added_target_seconds": per_added,
        "tool_install_seconds_median": install,
        "target_per_added_target_seconds": TARGET_SECONDS,
    }  # fmt: skip
    print(
        f"fleet.yml, median of {args.repeat} round(s); load {load_before[0]:.2f} -> {load_after[0]:.2f}"
    )
    print(f"{'':28} {'1 target':>9} {'3 targets':>10} {'per added target':>17}")
    for key, label in (
        ("run1_seconds", "run 1 (ship, install)"),
        ("run2_seconds", "run 2 (nothing to do)"),
    ):
        mark = "ok" if per_added[key] <= TARGET_SECONDS else "MISSED"
        print(f"{label:28} {median(1, key):8.1f}s {median(3, key):9.1f}s "
              f"{per_added[key]:15.2f}s  (target <= {TARGET_SECONDS:.0f} s: {mark})")  # fmt: skip
    print(f"the tool's install on a target (median): {install:.2f}s")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
