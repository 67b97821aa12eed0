"""The controller's side of fleet.yml: its cache of artifacts and RPMs, the repositories of the
RPMs, and the bundles it ships.

Run by the controller's python (sqlite_provision_fleet_controller_python, 3.6 or newer), from
roles/sqlite_provision_fleet/tasks/build.yml; standard library only. Each command prints one
JSON object on stdout; a problem is a message on stderr and exit status 2.

    fleet_cache.py find CACHE [--kind rpm] --arch A --release R --cflags=C --glibc=G [...] < dry-run.json
    fleet_cache.py admit CACHE FILE [< build.json]
    fleet_cache.py repo REPOS GROUP CACHED.rpm
    fleet_cache.py bundle OUT TOP FILE_OR_DIR...

An artifact in the cache is named by its key, sqlite-VERSION-ARCH-glibcFLOOR-DIGEST.tar.gz:
the release, the arch, the glibc it needs (its metadata's glibc_min: the floor, read from the
artifact once it is built) and a digest of its feature options, CFLAGS and the OS release of the
group it is built for (RedHat8: OS family and major version). Its .sha256 is beside it.

- `find` reads what `sqlite-provision build --dry-run --json` printed on the group's builder
  (the version and the feature options exactly as the build resolves them), the group's OS
  release and the glibc of each host of the group. It names the key's stem
  (sqlite-VERSION-ARCH-DIGEST), the group's glibc (its hosts' lowest), the name of the version's
  RPM package, and the cached artifact to ship: among those of this version, arch and digest
  that are intact (the .sha256 matches, the metadata agrees with the name), the one with the
  highest floor that the group's glibc reaches. One whose floor is above it is `refused`, never
  shipped to this group: the group's artifact is built on its builder.
- `admit` takes a freshly built STEM.tar.gz (and its .sha256) into the cache under its full key,
  reading its floor from its metadata.
- RPMs (`--kind rpm`, fleet.yml's repository mode) are keyed the same way, as
  sqlite-VERSION-ARCH-glibcFLOOR-DIGEST.rpm, with their .sha256 and a .json beside them: what
  `sqlite-provision build --rpm --json` said of the package (its name, its file name, its
  Requires) and its floor, the highest `libc.so.6(GLIBC_x.y)` it requires, which `admit` reads
  from that JSON on stdin. A cached RPM is a hit only if the .json's floor is the name's.
- `repo` puts a cached RPM into the group's repository REPOS/GROUP/ under the package's own file
  name (the copy of another build of the same package is replaced; other versions stay, side by
  side), for createrepo_c to index.
- `bundle` writes one tar of the tool, the artifact and their .sha256 (or a repository's
  directory, whole), under TOP/, for ansible.builtin.unarchive on the targets.
"""

import argparse
import hashlib
import json
import os
import re
import sys
import tarfile
import time

VERSION = re.compile(r"^[0-9]+[.][0-9]+[.][0-9]+([.][0-9]+)?$")
METADATA = "metadata.json"
SUFFIX = {"artifact": ".tar.gz", "rpm": ".rpm"}
GLIBC_REQUIRE = re.compile(r"^libc[.]so[.]6[(]GLIBC_([0-9]+(?:[.][0-9]+)*)[)]")
PACKAGE_FILE = re.compile(r"^sqlite-provision-sqlite[0-9_]+-[0-9.]+-[^/]+[.]rpm$")


class Refusal(Exception):
    """A problem the operator must fix: its message goes to stderr, exit 2."""


def glibc_key(text):
    """'2.31' -> (2, 31); a floor of None (no glibc symbol needed) is (0,)."""
    if not text:
        return (0,)
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        raise Refusal(f"not a glibc version: {text!r}") from None


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_sum(path):
    try:
        with open(path + ".sha256", encoding="utf-8") as handle:
            words = handle.read().split()
    except OSError:
        return None
    return words[0].lower() if words else None


def metadata_of(path):
    """The artifact's metadata.json, its first member (read without unpacking the rest)."""
    with tarfile.open(path, "r:gz") as tar:
        member = tar.next()
        if member is None or member.name != METADATA or not member.isfile():
            raise Refusal(f"{path} does not start with {METADATA}")
        handle = tar.extractfile(member)
        if handle is None:
            raise Refusal(f"{path}: unreadable {METADATA}")
        data = json.loads(handle.read().decode("utf-8"))
    if not isinstance(data, dict):
        raise Refusal(f"{path}: {METADATA} is not an object")
    return data


def floor_text(metadata):
    return str(metadata.get("glibc_min") or "0")


def rpm_facts(path):
    """What `admit` recorded beside a cached RPM (PATH.json): package, file, glibc_min."""
    with open(path + ".json", encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise Refusal(f"{path}.json is not an object")
    return data


def floor_of(path):
    """An artifact's floor from its metadata, an RPM's from what admit recorded of it."""
    return floor_text(rpm_facts(path) if path.endswith(".rpm") else metadata_of(path))


def rpm_floor(requires):
    """The highest glibc an RPM's automatic Requires name: libc.so.6(GLIBC_2.34)(64bit) -> 2.34;
    "0" when it names none."""
    floors = [m.group(1) for m in (GLIBC_REQUIRE.match(str(r)) for r in requires) if m]
    return max(floors, key=glibc_key) if floors else "0"


def stem_of(plan, arch, release, cflags):
    """sqlite-VERSION-ARCH-DIGEST from the build's dry run: the key without the floor. The digest
    covers the feature options, CFLAGS and the OS release the artifact is built for (RedHat8):
    each group has artifacts of its own, built by a builder of its release."""
    version = plan.get("version")
    if not isinstance(version, str) or not VERSION.match(version):
        raise Refusal(
            f"the fleet needs an exact version (X.Y.Z), not {version!r}: set "
            "sqlite_provision_fleet_version"
        )
    features = plan.get("features")
    if not isinstance(features, list):
        raise Refusal("`build --dry-run --json` named no feature options: is the tool too old?")
    options = sorted(str(feature["option"]) for feature in features)
    text = "release=" + release + "|" + ",".join(options) + "|CFLAGS=" + cflags
    return f"sqlite-{version}-{arch}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def full_name(stem, floor, suffix=".tar.gz"):
    head, digest = stem.rsplit("-", 1)
    return f"{head}-glibc{floor}-{digest}{suffix}"


def candidates(cache, stem, suffix=".tar.gz"):
    """Each cached artifact (or RPM) of this stem: (name, floor, problem or None)."""
    head, digest = stem.rsplit("-", 1)
    pattern = re.compile(
        re.escape(head) + r"-glibc([0-9][0-9.]*)-" + re.escape(digest) + re.escape(suffix) + "$"
    )
    found = []
    names = sorted(os.listdir(cache)) if os.path.isdir(cache) else []
    for name in names:
        match = pattern.match(name)
        if not match:
            continue
        path = os.path.join(cache, name)
        expected = sidecar_sum(path)
        if expected is None:
            found.append((name, match.group(1), "no .sha256 beside it"))
        elif sha256_of(path) != expected:
            found.append((name, match.group(1), "it does not match its .sha256"))
        elif floor_of(path) != match.group(1):
            found.append((name, match.group(1), "its metadata names another glibc floor"))
        else:
            found.append((name, match.group(1), None))
    return found


def find(args):
    plan = json.loads(sys.stdin.read())
    if not isinstance(plan, dict):
        raise Refusal("`build --dry-run --json` printed no object")
    stem = stem_of(plan, args.arch, args.release, args.cflags)
    glibc = min(args.glibc, key=glibc_key)
    hit, refused, ignored = None, [], []
    for name, floor, problem in candidates(args.cache, stem, SUFFIX[args.kind]):
        if problem:
            ignored.append({"artifact": name, "reason": problem})
        elif glibc_key(floor) > glibc_key(glibc):
            refused.append({"artifact": name, "glibc": floor})
        elif hit is None or glibc_key(floor) > glibc_key(hit[1]):
            hit = (name, floor)
    return {
        "version": plan["version"],
        "stem": stem,
        "glibc": glibc,
        "hit": hit[0] if hit else None,
        "refused": refused,
        "ignored": ignored,
        "kind": args.kind,
        "suffix": SUFFIX[args.kind],
        "package": package_name(plan["version"]),
    }


def package_name(version):
    """The name `sqlite-provision build --rpm` gives the package of a version (the tool's
    recipe/rpmspec.package_name): 3.44.2 -> sqlite-provision-sqlite3_44_2."""
    return "sqlite-provision-sqlite" + version.replace(".", "_")


def admit(args):
    path = args.file
    base = os.path.basename(path)
    suffix = next((s for s in SUFFIX.values() if base.endswith(s)), None)
    if suffix is None:
        raise Refusal(f"{path} is neither a .tar.gz nor an .rpm")
    expected = sidecar_sum(path)
    actual = sha256_of(path)
    if expected != actual:
        raise Refusal(f"{path} does not match its .sha256 ({actual} != {expected})")
    facts = rpm_build_facts(path, sys.stdin.read()) if suffix == ".rpm" else None
    floor = facts["glibc_min"] if facts else floor_text(metadata_of(path))
    name = full_name(base[: -len(suffix)], floor, suffix)
    target = os.path.join(args.cache, name)
    os.makedirs(args.cache, mode=0o755, exist_ok=True)
    if facts:
        write_text(target + ".json", json.dumps(facts, sort_keys=True) + "\n")
    write_text(target + ".sha256", f"{actual}  {name}\n")
    os.replace(path, target)
    os.unlink(path + ".sha256")
    result = {"artifact": name, "glibc": floor}
    if facts:
        result["package"] = facts["package"]
    return result


def rpm_build_facts(path, text):
    """What `sqlite-provision build --rpm --json` printed of the RPM at `path` (stdin): its
    package name and file name, and the floor its Requires name."""
    try:
        built = json.loads(text)
    except ValueError:
        raise Refusal("admit of an RPM reads `build --rpm --json`'s output on stdin") from None
    if not isinstance(built, dict) or not isinstance(built.get("requires"), list):
        raise Refusal("the build's JSON names no requires: is the tool too old?")
    file_name = os.path.basename(str(built.get("rpm") or ""))
    package = str(built.get("name") or "")
    if not PACKAGE_FILE.match(file_name) or not file_name.startswith(package + "-"):
        raise Refusal(f"the build's JSON names no package of sqlite-provision: {file_name!r}")
    return {
        "package": package,
        "file": file_name,
        "version": built.get("version"),
        "glibc_min": rpm_floor(built["requires"]),
        "requires": built["requires"],
    }


def repo(args):
    """The cached RPM into REPOS/GROUP/ under its package file name (atomically; mode 0644)."""
    cached = args.file
    if not cached.endswith(".rpm") or sidecar_sum(cached) != sha256_of(cached):
        raise Refusal(f"{cached} is not a cached RPM that matches its .sha256")
    facts = rpm_facts(cached)
    file_name = str(facts.get("file") or "")
    if not PACKAGE_FILE.match(file_name):
        raise Refusal(f"{cached}.json names no package file")
    directory = os.path.join(args.repos, args.group)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    target = os.path.join(directory, file_name)
    changed = not os.path.isfile(target) or sha256_of(target) != sidecar_sum(cached)
    if changed:
        partial = f"{target}.part{os.getpid()}"
        with open(cached, "rb") as source, open(partial, "wb") as handle:
            for block in iter(lambda: source.read(1 << 20), b""):
                handle.write(block)
        os.chmod(partial, 0o644)
        os.replace(partial, target)
    return {"repo": directory, "file": file_name, "package": facts["package"], "changed": changed}


def write_text(path, text):
    partial = f"{path}.part{os.getpid()}"
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(partial, 0o644)
    os.replace(partial, path)


def bundle(args):
    partial = f"{args.out}.part{os.getpid()}"
    with tarfile.open(partial, "w") as tar:
        info = tarfile.TarInfo(args.top)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
        info.uname, info.gname = "root", "root"
        tar.addfile(info)
        for path in args.files:
            add(tar, path, args.top + "/" + os.path.basename(path.rstrip("/")))
    os.replace(partial, args.out)
    return {"bundle": args.out}


def add(tar, path, arcname):
    """A file (0644), or a directory (0755) and everything in it, owned by root."""
    info = tar.gettarinfo(path, arcname=arcname)
    info.uid, info.gid, info.uname, info.gname = 0, 0, "root", "root"
    if info.isdir():
        info.mode = 0o755
        tar.addfile(info)
        for name in sorted(os.listdir(path)):
            add(tar, os.path.join(path, name), arcname + "/" + name)
    elif info.isfile():
        info.mode = 0o644
        with open(path, "rb") as handle:
            tar.addfile(info, handle)
    else:
        raise Refusal(f"{path} is neither a file nor a directory")


def parser():
    top = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command")
    finding = commands.add_parser("find")
    finding.add_argument("cache")
    finding.add_argument("--kind", choices=sorted(SUFFIX), default="artifact")
    finding.add_argument("--arch", required=True)
    finding.add_argument("--release", required=True)
    finding.add_argument("--cflags", default="")
    finding.add_argument("--glibc", action="append", required=True)
    admitting = commands.add_parser("admit")
    admitting.add_argument("cache")
    admitting.add_argument("file")
    repository = commands.add_parser("repo")
    repository.add_argument("repos")
    repository.add_argument("group")
    repository.add_argument("file")
    bundling = commands.add_parser("bundle")
    bundling.add_argument("out")
    bundling.add_argument("top")
    bundling.add_argument("files", nargs="+")
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    actions = {"find": find, "admit": admit, "repo": repo, "bundle": bundle}
    if args.command not in actions:
        parser().error("name a command: find, admit, repo or bundle")
    try:
        result = actions[args.command](args)
    except (Refusal, OSError, ValueError, KeyError, TypeError, tarfile.TarError) as exc:
        sys.stderr.write(f"fleet_cache.py {args.command}: {exc}\n")
        return 2
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
