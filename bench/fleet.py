"""The fleet flow's cost per target: examples/ansible/fleet.yml over 1, 3 and 6 targets, with
Ansible's default forks (5) and with `-f 10`.

    .venv/bin/python bench/fleet.py [--repeat 2] [--out FILE.json]

As root, on a machine set up for the fleet tier (tests/integration/test_fleet.py: podman, runc,
mmdebstrap, ansible-core in .venv, the containers.podman collection, the shared 3.44.2 tarball in
$SQLITE_PROVISION_TEST_TARBALLS or ../shared/sqlite-tarballs). It reuses the tier's helpers
(tests/support/): the targets are containers of the RHEL 9 look-alike (a Debian 11 root with
SQLite 3.34.1 and python 3.9.2, no compiler, --network=none), all of one group, so that the
group's cost (the dry run on its builder, the cache lookup, the bundle) is the same at every size
and what grows is the targets' cost. One warm-up play builds the group's artifact into the
controller's cache (not timed); every timed play finds it there, on a first run (ship, install)
and on a second run (nothing to do), each on fresh containers.

For each forks setting it fits a line through the medians at 1, 3 and 6 targets: its slope is
the cost of one more target, its intercept the play's fixed cost. It also reports, per target,
the controller's CPU seconds (user + system of ansible-playbook and the podman clients it runs:
the work no fork count can spread over more cores than the controller has), the tool's own
install time on a target, and the seconds of each task of the 6-target first run (from a small
callback, bench/callback_plugins/fleet_timer.py). Nothing is asserted; the machine is shared and
noisy, so the load average before and after is printed beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.fleet import (  # noqa: E402
    Containers,
    Play,
    Target,
    ansible_env,
    delta_seconds,
    podman_collection,
    run_playbook,
    write_inventory,
)
from support.look_alike_trees import look_alike_tree, tree_info  # noqa: E402
from support.mirror import Mirror  # noqa: E402
from support.pseudo_rhel_image import CONTAINERS_CONF, cache_dir  # noqa: E402
from support.pyz import build_pyz  # noqa: E402

VERSION = "3.44.2"
TARBALL = "sqlite-autoconf-3440200.tar.gz"
SIZES = (1, 3, 6)
FORKS: Tuple[Optional[int], ...] = (None, 10)  # None: Ansible's default, 5
TIMER = REPO / "bench" / "callback_plugins"
TIMED = re.compile(r"^TIMER (\d+[.]\d+) x(\d+) (.*)$", re.M)


def say(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def tarball() -> Path:
    folder = Path(os.environ.get("SQLITE_PROVISION_TEST_TARBALLS") or "../shared/sqlite-tarballs")
    path = (folder if folder.is_absolute() else REPO / folder) / TARBALL
    if not path.is_file():
        sys.exit(f"bench/fleet.py: no {path} (set SQLITE_PROVISION_TEST_TARBALLS)")
    return path


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_play(inventory: Path, extra_vars: Dict[str, object], env: Dict[str, str], base: Path,
               forks: Optional[int]) -> Tuple[Play, float]:  # fmt: skip
    """The play and the CPU seconds its process tree used on the controller."""
    before = children_cpu()
    play = run_playbook(inventory, extra_vars, env, base,
                        *(["-f", str(forks)] if forks else []))  # fmt: skip
    if play.proc.returncode != 0:
        sys.exit(f"bench/fleet.py: the play failed\n{play.describe()}")
    return play, children_cpu() - before


def installs(play: Play) -> List[float]:
    """The tool's install wall time on each target, from the play's summary."""
    text = "\n".join(play.summary())
    return [delta_seconds(s) for s in re.findall(r"installed now in (\S+)$", text, re.M)]


def task_seconds(play: Play) -> Dict[str, float]:
    return {name: float(seconds) for seconds, _, name in TIMED.findall(play.proc.stdout)}


def inventory_of(path: Path, names: Sequence[str], python: str) -> Path:
    hosts = {n: {"ansible_host": n, "ansible_python_interpreter": python} for n in names}
    return write_inventory(path, {"targets": hosts})


def one_round(count: int, forks: Optional[int], tag: str, tree: Path, python: str, base: Path,
              env: Dict[str, str], podman_env: Dict[str, str],
              extra_vars: Dict[str, object]) -> Dict[str, Any]:  # fmt: skip
    names = [f"sqlite-bench-{os.getpid()}-{tag}-{n}" for n in range(1, count + 1)]
    work = base / f"round-{tag}"
    work.mkdir()
    inventory = inventory_of(work / "inventory.json", names, python)
    with Containers(podman_env, [Target(name, tree) for name in names]):
        first, first_cpu = timed_play(inventory, extra_vars, env, work, forks)
        second, second_cpu = timed_play(inventory, extra_vars, env, work, forks)
    for play in (first, second):
        if "built now" in "\n".join(play.summary()):
            sys.exit("bench/fleet.py: a timed play built the artifact: the cache was not warm")
    return {
        "targets": count,
        "forks": forks or 5,
        "run1_seconds": round(first.seconds, 2),
        "run2_seconds": round(second.seconds, 2),
        "run1_controller_cpu_seconds": round(first_cpu, 2),
        "run2_controller_cpu_seconds": round(second_cpu, 2),
        "install_seconds": installs(first),
        "run1_tasks": task_seconds(first),
    }


def fit(points: Sequence[Tuple[int, float]]) -> Tuple[float, float]:
    """(intercept, slope) of the least-squares line through `points`."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, slope


def setup(base: Path) -> Tuple[Dict[str, str], Dict[str, str], Path, str, Dict[str, object], Path]:
    conf = base / "containers.conf"
    conf.write_text(CONTAINERS_CONF, encoding="utf-8")
    podman_env = dict(os.environ, CONTAINERS_CONF=str(conf))
    say("look-alike tree, pyz and collection")
    tree = look_alike_tree("rhel9")
    python = str(tree_info(tree)["ansible_python"])
    pyz = build_pyz(REPO, base / "dist")
    env = ansible_env(podman_env, podman_collection(cache_dir()), base)
    env.update(ANSIBLE_CALLBACK_PLUGINS=str(TIMER), ANSIBLE_CALLBACKS_ENABLED="fleet_timer")
    extra_vars: Dict[str, object] = {
        "sqlite_provision_pyz": str(pyz),
        "sqlite_provision_fleet_version": VERSION,
        "sqlite_provision_fleet_build_environment": {"CFLAGS": "-O0"},
        "sqlite_provision_fleet_cache": str(base / "artifacts"),
    }
    return podman_env, env, tree, python, extra_vars, pyz


def warm_up(base: Path, tree: Path, python: str, env: Dict[str, str],
            podman_env: Dict[str, str], extra_vars: Dict[str, object]) -> None:  # fmt: skip
    """One play that builds the group's artifact on its builder, from the loopback mirror."""
    warm = base / "warm"
    warm.mkdir()
    name = f"sqlite-bench-{os.getpid()}-warm"
    inventory = inventory_of(warm / "inventory.json", [name], python)
    with Mirror() as mirror, Containers(podman_env, [Target(name, tree, "host")]):
        mirror.add_file(f"/2023/{TARBALL}", tarball())
        args = {**extra_vars, "sqlite_provision_fleet_build_args": ["--mirror", mirror.url]}
        play = run_playbook(inventory, args, env, warm)
    if play.proc.returncode != 0 or "built now" not in "\n".join(play.summary()):
        sys.exit(f"bench/fleet.py: the warm-up play failed\n{play.describe()}")


def report(rounds: List[Dict[str, Any]], repeat: int, load: Tuple[float, float]) -> Dict[str, Any]:
    def median(forks: int, count: int, key: str) -> float:
        return statistics.median(
            r[key] for r in rounds if r["forks"] == forks and r["targets"] == count
        )

    result: Dict[str, Any] = {"started_load": load[0], "ended_load": load[1], "rounds": rounds}
    print(f"fleet.yml, medians of {repeat} round(s); load {load[0]:.2f} -> {load[1]:.2f}")
    print(f"{'':34} {'1 target':>9} {'3 targets':>10} {'6 targets':>10} {'fixed':>8} "
          f"{'per target':>11}")  # fmt: skip
    for forks in sorted({r["forks"] for r in rounds}):
        for key, label in (("run1_seconds", "run 1 (ship, install)"),
                           ("run2_seconds", "run 2 (nothing to do)"),
                           ("run1_controller_cpu_seconds", "run 1, controller CPU s"),
                           ("run2_controller_cpu_seconds", "run 2, controller CPU s")):  # fmt: skip
            points = [(n, median(forks, n, key)) for n in SIZES]
            fixed, slope = fit(points)
            result[f"forks{forks}_{key}"] = {"medians": dict(points), "fixed": fixed,
                                             "per_target": slope}  # fmt: skip
            cells = " ".join(f"{value:9.1f}s" for _, value in points)
            print(f"-f {forks:<3} {label:27} {cells} {fixed:7.1f}s {slope:10.2f}s")
    install = statistics.median(s for r in rounds for s in r["install_seconds"])
    result["tool_install_seconds_median"] = install
    print(f"the tool's install on a target (median): {install:.2f}s")
    six = [r["run1_tasks"] for r in rounds if r["targets"] == max(SIZES) and r["forks"] == 5]
    tasks = {name: statistics.median(t.get(name, 0.0) for t in six) for name in six[0]}
    result["run1_task_seconds_6_targets_forks5"] = tasks
    print(f"run 1, {max(SIZES)} targets, -f 5: the slowest tasks (median seconds)")
    for name, seconds in sorted(tasks.items(), key=lambda item: -item[1])[:8]:
        print(f"  {seconds:6.2f}s  {name}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help="rounds of every size and forks")
    parser.add_argument("--out", type=Path, help="write every number as JSON here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/fleet.py: run as root (podman, the build as nobody)")
    base = Path(tempfile.mkdtemp(prefix="sqlite-fleet-bench-"))
    base.chmod(0o755)
    try:
        measure(base, args.repeat, args.out)
    finally:
        shutil.rmtree(str(base), ignore_errors=True)


def measure(base: Path, repeat: int, out: Optional[Path]) -> None:
    podman_env, env, tree, python, extra_vars, _ = setup(base)
    say("warming the controller's artifact cache (one build on the group's builder, not timed)")
    warm_up(base, tree, python, env, podman_env, extra_vars)
    started = os.getloadavg()[0]
    rounds: List[Dict[str, Any]] = []
    for n in range(repeat):
        for forks in FORKS:
            for count in SIZES:
                say(f"round {n + 1}/{repeat}: {count} target(s), -f {forks or 5}")
                rounds.append(one_round(count, forks, f"{n}-{forks or 5}-{count}", tree, python,
                                        base, env, podman_env, extra_vars))  # fmt: skip
                say(f"  run 1 {rounds[-1]['run1_seconds']}s, run 2 {rounds[-1]['run2_seconds']}s")
    result = report(rounds, repeat, (started, os.getloadavg()[0]))
    if out:
        out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
