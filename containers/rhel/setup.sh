#!/bin/sh
# Image setup for containers/rhel/Containerfile, in two steps (two layers):
#   setup.sh python   a python >= 3.7 for the tool, and the system python3 the tool provisions
#   setup.sh tool     the tool, from the source tree in the context, into a venv on that python;
#                     with containers/rhel/local/wheels/*.whl (its dependencies and hatchling),
#                     offline
# It never installs gcc or make, and fails if the base already has them: the point of the
# image is that `sqlite-provision install` runs `yum install -y gcc make` itself.
set -eu

STATE=/opt/sqlite-provision
SRC=$STATE/src
VENV=$STATE/venv
LOCAL=$SRC/containers/rhel/local
PIP_QUIET="--no-cache-dir --disable-pip-version-check --progress-bar off"

say() { printf 'setup.sh: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

ID=
VERSION_ID=
PLATFORM_ID=
if [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091
    . /etc/os-release
fi
MAJOR=${VERSION_ID%%.*}

pkg_install() {
    say "yum install -y $*"
    yum install -y --setopt=tsflags=nodocs "$@"
}

pkg_clean() {
    yum clean all >/dev/null 2>&1 || true
    rm -rf /var/cache/yum /var/cache/dnf
}

# CentOS 7 is end of life: mirror.centos.org and mirrorlist.centos.org are gone, and its
# packages live on at vault.centos.org (plain http: the image's CA bundle and OpenSSL 1.0.2
# trip over today's certificate chains; yum still checks the packages' GPG signatures).
centos7_vault() {
    for repo in /etc/yum.repos.d/*.repo; do
        [ -f "$repo" ] || continue
        # shellcheck disable=SC2016
        sed -i \
            -e 's|^mirrorlist=|#mirrorlist=|' \
            -e 's|^#* *baseurl=http://mirror\.centos\.org/centos/\$releasever/|baseurl=http://vault.centos.org/7.9.2009/|' \
            -e 's|^#* *baseurl=http://mirror\.centos\.org/centos/7/|baseurl=http://vault.centos.org/7.9.2009/|' \
            "$repo"
    done
}

python_ok() {
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 7))' >/dev/null 2>&1
}

# The image's own python3 when it is new enough, else a newer one the distribution ships.
tool_python() {
    for candidate in python3 python3.13 python3.12 python3.11 python3.9 python3.8 \
        /opt/rh/rh-python38/root/usr/bin/python3.8; do
        found=$(command -v "$candidate" 2>/dev/null) || continue
        if python_ok "$found"; then
            printf '%s\n' "$found"
            return 0
        fi
    done
    return 1
}

setup_python() {
    is_centos7=false
    if [ "$ID" = centos ] && [ "$MAJOR" = 7 ]; then
        is_centos7=true
        centos7_vault
    fi
    command -v yum >/dev/null 2>&1 || die "no yum in this image: it is not a RHEL-family base"

    # The system python3: what `bash -l -c python3` runs, and what the tool verifies.
    if ! command -v python3 >/dev/null 2>&1; then
        pkg_install python3
    fi

    if ! python=$(tool_python); then
        # The tool needs python >= 3.7; RHEL 8's python3 is 3.6 and CentOS 7's is 3.6.
        if [ "$PLATFORM_ID" = platform:el8 ]; then
            pkg_install python3.11
        elif $is_centos7; then
            pkg_install centos-release-scl-rh
            centos7_vault # the SCL repo files it adds point at mirror.centos.org too
            pkg_install rh-python38-python rh-python38-python-pip
            # Software-collection pythons link a libpython outside the loader's path.
            echo /opt/rh/rh-python38/root/usr/lib64 >/etc/ld.so.conf.d/rh-python38.conf
            ldconfig
        fi
        python=$(tool_python) || die "no python >= 3.7 here, and no known way to install one"
    fi

    # venv needs ensurepip's bundled wheels, which some distributions package apart.
    if ! "$python" -m venv /tmp/venv-probe >/dev/null 2>&1; then
        name=$(basename "$python")
        pkg_install "$name-pip" || pkg_install python3-pip
    fi
    rm -rf /tmp/venv-probe
    mkdir -p "$STATE"
    printf '%s\n' "$python" >"$STATE/python"
    say "the tool will run on $python ($("$python" -c 'import sys; print(sys.version.split()[0])'))"

    for tool in gcc cc make; do
        if command -v "$tool" >/dev/null 2>&1; then
            die "this base already has $tool ($(command -v "$tool")): the image must not have a compiler"
        fi
    done
    pkg_clean
}

setup_tool() {
    [ -s "$STATE/python" ] || die "run 'setup.sh python' first"
    python=$(cat "$STATE/python")
    "$python" -m venv "$VENV"
    pip="$VENV/bin/python -m pip"
    if ls "$LOCAL"/wheels/*.whl >/dev/null 2>&1; then
        say "installing offline from $LOCAL/wheels"
        if ls "$LOCAL"/wheels/pip-*.whl >/dev/null 2>&1; then
            # shellcheck disable=SC2086
            $pip install $PIP_QUIET --no-index --find-links "$LOCAL/wheels" --upgrade pip
        fi
        # The source tree, built by hatchling from the same folder: no package index at all.
        # shellcheck disable=SC2086
        $pip install $PIP_QUIET --no-index --find-links "$LOCAL/wheels" "$SRC"
    else
        say "installing from $SRC (dependencies from the package index)"
        # shellcheck disable=SC2086
        $pip install $PIP_QUIET --upgrade pip
        # shellcheck disable=SC2086
        $pip install $PIP_QUIET "$SRC"
    fi
    mkdir -p /usr/local/bin
    ln -sf "$VENV/bin/sqlite-provision" /usr/local/bin/sqlite-provision
    /usr/local/bin/sqlite-provision --version
}

case "${1:-}" in
python) setup_python ;;
tool) setup_tool ;;
*) die "usage: setup.sh python|tool" ;;
esac
