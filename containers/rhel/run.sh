#!/usr/bin/env bash
# Build containers/rhel/Containerfile on RHEL-family bases and check sqlite-provision in each:
# `install --json` (which must yum-install gcc and make itself), `verify --json`, `install
# --json` again (changed must be false), and a login shell's python3, which must load the new
# SQLite; where the image has SELinux's tools, `ls -Z` of the installed library (and, where
# SELinux is enabled in the container, its type must be the policy's default for its path). One
# summary row per base; the exit status is non-zero if any row failed.
#
#   containers/rhel/run.sh [--engine podman|docker] [BASE...]
#
# BASE is an image reference or one of the aliases below; no BASE means all of them.
#
# Environment (all optional):
#   SQLITE_PROVISION_ARGS     extra `install` arguments, split on blanks (e.g. "--version 3.46.1")
#   SQLITE_PROVISION_TARBALL  a local sqlite-autoconf tarball: copied into the build context and
#                             passed as `install --tarball` (no download at run time)
#   SQLITE_PROVISION_PYZ      a built sqlite-provision.pyz to put in the images (default: run
#                             scripts/build-pyz, which needs PyPI once for its pinned inputs)
#   SQLITE_PROVISION_PYTHON   the python in the image that runs the tool (default: the pyz's
#                             `#!/usr/bin/env python3`, the base's own python3)
#   SQLITE_PROVISION_MIRROR, CFLAGS, HTTP(S)_PROXY, NO_PROXY
#                             passed into the container when set (CFLAGS=-O0: fast test builds)
#   CONTAINER_BUILD_OPTS      extra `build` options, e.g. "--pull=never --network=none"
#   CONTAINER_RUN_OPTS        extra `run` options, e.g. "--network=none" or "--network=host"
#   RESULTS_DIR               keep every command's output here (default: a temporary folder,
#                             kept only when a row fails)
#   KEEP_IMAGES=1             keep the built images (localhost/sqlite-provision-rhel:<base>)
set -euo pipefail

declare -A ALIASES=(
    [ubi8]=registry.access.redhat.com/ubi8/ubi
    [ubi9]=registry.access.redhat.com/ubi9/ubi
    [ubi10]=registry.access.redhat.com/ubi10/ubi
    [rocky8]=docker.io/rockylinux/rockylinux:8
    [rocky9]=docker.io/rockylinux/rockylinux:9
    [alma9]=docker.io/library/almalinux:9
    [alma10]=docker.io/library/almalinux:10
    [oracle8]=docker.io/library/oraclelinux:8
    [oracle9]=docker.io/library/oraclelinux:9
    [amazonlinux2]=docker.io/library/amazonlinux:2
    [amazonlinux2023]=docker.io/library/amazonlinux:2023
    [centos7]=quay.io/centos/centos:7
)
DEFAULT_BASES=(ubi8 ubi9 ubi10 rocky8 rocky9 alma9 alma10 oracle8 oracle9 amazonlinux2 amazonlinux2023 centos7)

# Where setup.sh puts things in the image.
IMAGE_TARBALLS=/opt/sqlite-provision/containers/rhel/local/tarballs
IMAGE_TOOL=/usr/local/bin/sqlite-provision

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
    printf 'Aliases:\n'
    for alias in "${DEFAULT_BASES[@]}"; do
        printf '  %-16s %s\n' "$alias" "${ALIASES[$alias]}"
    done
}

die() {
    printf 'run.sh: %s\n' "$*" >&2
    exit 2
}

log() { printf '== %s\n' "$*" >&2; }

engine=${CONTAINER_ENGINE:-}
bases=()
while [ $# -gt 0 ]; do
    case $1 in
    --engine)
        [ $# -ge 2 ] || die "--engine needs a value"
        engine=$2
        shift 2
        ;;
    --engine=*)
        engine=${1#--engine=}
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    --)
        shift
        bases+=("$@")
        break
        ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
        bases+=("$1")
        shift
        ;;
    esac
done
[ "${#bases[@]}" -gt 0 ] || bases=("${DEFAULT_BASES[@]}")

if [ -z "$engine" ]; then
    if command -v podman >/dev/null 2>&1; then
        engine=podman
    elif command -v docker >/dev/null 2>&1; then
        engine=docker
    else
        die "neither podman nor docker is installed"
    fi
fi
case $engine in
podman | docker) command -v "$engine" >/dev/null 2>&1 || die "$engine is not installed" ;;
*) die "--engine must be podman or docker, not $engine" ;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ ! -f "$repo/pyproject.toml" ] || [ ! -d "$repo/src/sqlite_provision" ]; then
    die "cannot find the repository root from $0"
fi

read -r -a build_opts <<<"${CONTAINER_BUILD_OPTS:-}"
read -r -a run_opts <<<"${CONTAINER_RUN_OPTS:-}"
read -r -a install_args <<<"${SQLITE_PROVISION_ARGS:-}"

# The build context: the repository's files that the Containerfile copies, and local extras.
work=$(mktemp -d "${TMPDIR:-/tmp}/sqlite-provision-rhel.XXXXXX")
ctx=$work/context
containers=()
images=()
# `kill` first: `sleep` as PID 1 ignores the SIGTERM that `rm -f` starts with.
remove_container() {
    "$engine" kill "$1" >/dev/null 2>&1 || true
    "$engine" rm -f "$1" >/dev/null 2>&1 || true
}
cleanup() {
    local id
    for id in "${containers[@]}"; do
        remove_container "$id"
    done
    if [ "${KEEP_IMAGES:-}" != 1 ]; then
        for id in "${images[@]}"; do
            "$engine" rmi -f "$id" >/dev/null 2>&1 || true
        done
    fi
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$ctx/containers/rhel/local" "$ctx/dist"
cp "$repo/containers/rhel/Containerfile" "$repo/containers/rhel/setup.sh" "$ctx/containers/rhel/"
if [ -n "${SQLITE_PROVISION_PYZ:-}" ]; then
    [ -f "$SQLITE_PROVISION_PYZ" ] || die "SQLITE_PROVISION_PYZ=$SQLITE_PROVISION_PYZ is not a file"
    cp "$SQLITE_PROVISION_PYZ" "$ctx/dist/sqlite-provision.pyz"
else
    log "scripts/build-pyz"
    python3 "$repo/scripts/build-pyz" --out "$ctx/dist" >&2
fi
chmod 0755 "$ctx/dist/sqlite-provision.pyz"

if [ -n "${SQLITE_PROVISION_TARBALL:-}" ]; then
    [ -f "$SQLITE_PROVISION_TARBALL" ] || die "SQLITE_PROVISION_TARBALL=$SQLITE_PROVISION_TARBALL is not a file"
    mkdir -p "$ctx/containers/rhel/local/tarballs"
    cp "$SQLITE_PROVISION_TARBALL" "$ctx/containers/rhel/local/tarballs/"
    install_args+=(--tarball "$IMAGE_TARBALLS/$(basename "$SQLITE_PROVISION_TARBALL")")
fi
tool=("$IMAGE_TOOL")
if [ -n "${SQLITE_PROVISION_PYTHON:-}" ]; then
    tool=("$SQLITE_PROVISION_PYTHON" "$IMAGE_TOOL")
fi
env_opts=()
for name in SQLITE_PROVISION_MIRROR CFLAGS HTTPS_PROXY HTTP_PROXY NO_PROXY https_proxy http_proxy no_proxy; do
    if [ -n "${!name:-}" ]; then
        env_opts+=(-e "$name=${!name}")
    fi
done

if [ -n "${RESULTS_DIR:-}" ]; then
    results=$RESULTS_DIR
    keep_results=always
else
    results=$work/results
    keep_results=on-failure
fi
mkdir -p "$results"

# Judges one base from its outputs, which arrive on stdin separated by lines of "--8<--":
# install, verify, install again, the login shell's output. Prints the row's fields.
read -r -d '' JUDGE <<'EOF' || true
import json, sys

parts = sys.stdin.read().split("\n--8<--\n")
rc_install, rc_verify, rc_again, rc_login = (int(x) for x in sys.argv[1:5])

def load(text):
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                return json.loads(text[text.index(line):])
            except ValueError:
                return {}
    return {}

first, verify, again = (load(p) for p in parts[:3])
login = (parts[3].strip().splitlines() or ["-"])[-1].strip()
new = first.get("version") or "-"
problems = []
if rc_install != 0 or not first.get("ok"):
    problems.append("install exit {}: {}".format(rc_install, first.get("error") or "no JSON"))
elif first.get("changed") is not True:
    problems.append("first install reported changed={}".format(first.get("changed")))
for probe in first.get("verified") or []:
    if not probe.get("ok") or probe.get("sqlite_version") != new:
        problems.append("{} loads {}".format(probe.get("python"), probe.get("sqlite_version")))
if not first.get("verified") and rc_install == 0:
    problems.append("install verified no python")
if rc_verify != 0 or not verify.get("ok"):
    problems.append("verify exit {}: {}".format(rc_verify, verify.get("error") or "not ok"))
if rc_again != 0 or not again.get("ok"):
    problems.append("second install exit {}: {}".format(rc_again, again.get("error") or "not ok"))
elif again.get("changed") is not False:
    problems.append("second install reported changed={}".format(again.get("changed")))
if rc_login != 0 or login != new:
    problems.append("bash -l python3 reports {} (exit {})".format(login, rc_login))
flags = "/".join(json.dumps(d.get("changed")) if d else "-" for d in (first, again))
print("\t".join([new, flags, "ok" if not problems else "FAIL: " + "; ".join(problems)]))
EOF

slug() {
    local s
    s=$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9_.-' '-')
    s=${s#[.-]}
    printf '%s' "${s:0:100}"
}

in_container() {
    "$engine" exec "$cid" "$@"
}

rows=()
failed=0
row() {
    rows+=("$(printf '%s\t%s\t%s\t%s\t%s\t%s' "$@")")
    case $6 in ok) ;; *) failed=1 ;; esac
}

for base in "${bases[@]}"; do
    image=${ALIASES[$base]:-$base}
    name=$(slug "$base")
    out=$results/$name
    mkdir -p "$out"
    tag=localhost/sqlite-provision-rhel:$name
    log "$image: build"
    images+=("$tag")
    if ! "$engine" build -f "$ctx/containers/rhel/Containerfile" --build-arg "BASE=$image" \
        -t "$tag" "${build_opts[@]}" "$ctx" >"$out/build.log" 2>&1; then
        tail -n 25 "$out/build.log" >&2
        row "$base" - - - - "FAIL: image build (see $out/build.log)"
        continue
    fi
    log "$image: run"
    if ! cid=$("$engine" run -d "${run_opts[@]}" "${env_opts[@]}" "$tag" sleep infinity 2>"$out/run.log"); then
        cat "$out/run.log" >&2
        row "$base" - - - - "FAIL: container start"
        continue
    fi
    containers+=("$cid")
    system=$(in_container python3 -c 'import sqlite3, sys; print(sqlite3.sqlite_version, sys.version.split()[0])' 2>&1) ||
        system="? ?"
    read -r system_sqlite system_python _ <<<"$system"

    rc_install=0 rc_verify=0 rc_again=0 rc_login=0
    in_container "${tool[@]}" --version >"$out/tool.txt" 2>&1 || true
    log "$image: $(cat "$out/tool.txt")"
    log "$image: sqlite-provision install --json ${install_args[*]}"
    in_container "${tool[@]}" install --json "${install_args[@]}" \
        >"$out/install.json" 2>"$out/install.log" || rc_install=$?
    log "$image: sqlite-provision verify --json"
    in_container "${tool[@]}" verify --json >"$out/verify.json" 2>"$out/verify.log" || rc_verify=$?
    log "$image: sqlite-provision install --json (again)"
    in_container "${tool[@]}" install --json "${install_args[@]}" \
        >"$out/install-again.json" 2>"$out/install-again.log" || rc_again=$?
    log "$image: bash -l -c python3"
    in_container bash -l -c 'python3 -c "import sqlite3; print(sqlite3.sqlite_version)"' \
        >"$out/login.txt" 2>&1 || rc_login=$?

    # SELinux: where the image has its tools, the installed library's label (ls -Z), which must
    # be the policy's default for its path wherever SELinux is enabled in the container.
    label_problem=
    if in_container sh -c 'command -v matchpathcon' >/dev/null 2>&1; then
        lib=$(in_container readlink -f /opt/sqlite/current/lib/libsqlite3.so.0 2>/dev/null) || lib=
        if [ -n "$lib" ]; then
            in_container ls -Z "$lib" >"$out/label.txt" 2>&1 || true
            log "$image: ls -Z: $(cat "$out/label.txt")"
            if in_container selinuxenabled >/dev/null 2>&1; then
                have=$(awk '{print $1}' "$out/label.txt" | cut -d: -f3)
                want=$(in_container matchpathcon -n "$lib" 2>/dev/null | cut -d: -f3) || want=
                if [ -z "$have" ] || [ "$have" != "$want" ]; then
                    label_problem="$lib is labelled ${have:-nothing}, the policy says ${want:-?}"
                fi
            fi
        fi
    fi

    # A container that died under the commands explains every failure after it.
    state=$("$engine" inspect -f '{{.State.Status}} exit={{.State.ExitCode}} oom={{.State.OOMKilled}}' "$cid" 2>&1) ||
        true
    printf '%s\n' "$state" >"$out/state.txt"
    case $state in running*) ;; *) log "$image: the container is no longer running: $state" ;; esac

    # Judged by the image's python3 in a container of its own (the host may have none).
    verdict=$(
        for f in install.json verify.json install-again.json login.txt; do
            cat "$out/$f"
            printf '\n--8<--\n'
        done | "$engine" run --rm -i "${run_opts[@]}" "$tag" python3 -c "$JUDGE" \
            "$rc_install" "$rc_verify" "$rc_again" "$rc_login" 2>&1
    ) || verdict=$(printf -- '-\t-\tFAIL: judging the outputs: %s' "$verdict")
    case $state in
    running*) ;;
    *) verdict="$verdict (container: $state)" ;;
    esac
    IFS=$'\t' read -r new flags result <<<"$verdict"
    if [ -n "$label_problem" ] && [ "$result" = ok ]; then
        result="FAIL: $label_problem"
    fi
    case $result in
    ok) ;;
    *) tail -n 20 "$out/install.log" >&2 ;;
    esac
    printf '%s\n' "$verdict" >"$out/row.txt"
    row "$base" "$system_sqlite" "$system_python" "$new" "$flags" "$result"

    remove_container "$cid"
done

printf '\n%-40s %-14s %-14s %-8s %-12s %s\n' base "system sqlite" "system python" new "changed" result
for line in "${rows[@]}"; do
    IFS=$'\t' read -r b s p n c r <<<"$line"
    printf '%-40s %-14s %-14s %-8s %-12s %s\n' "$b" "$s" "$p" "$n" "$c" "$r"
done

if [ "$failed" != 0 ]; then
    if [ "$keep_results" = on-failure ]; then
        kept=$(mktemp -d "${TMPDIR:-/tmp}/sqlite-provision-rhel-results.XXXXXX")
        cp -R "$results"/. "$kept/"
        printf '\nOutputs kept in %s\n' "$kept" >&2
    fi
    exit 1
fi
