#!/bin/sh
# Image setup for containers/rhel/Containerfile: the base's own python3 (which runs the tool,
# sqlite-provision.pyz, and which the tool provisions), and on CentOS 7 a yum that still works
# (vault.centos.org). It never installs gcc or make, and fails if the base already has them: the
# point of the image is that `sqlite-provision install` runs `yum install -y gcc make` itself.
set -eu

say() { printf 'setup.sh: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

ID=
VERSION_ID=
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

setup_python() {
    if [ "$ID" = centos ] && [ "$MAJOR" = 7 ]; then
        centos7_vault
    fi
    command -v yum >/dev/null 2>&1 || die "no yum in this image: it is not a RHEL-family base"

    # The system python3: what `bash -l -c python3` runs, and what the tool verifies.
    if ! command -v python3 >/dev/null 2>&1; then
        pkg_install python3
    fi

    python=$(command -v python3)
    # The tool runs on python3 >= 3.6: every supported base's own (CentOS 7 and RHEL 8: 3.6).
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 6))' ||
        die "$python is older than 3.6: the tool cannot run on it"
    say "the tool will run on $python ($("$python" -c 'import sys; print(sys.version.split()[0])'))"

    # As root the tool builds as `nobody` through setpriv (util-linux): every RHEL-family host
    # has it, some minimal images do not.
    if ! command -v setpriv >/dev/null 2>&1; then
        pkg_install util-linux
    fi

    for tool in gcc cc make; do
        if command -v "$tool" >/dev/null 2>&1; then
            die "this base already has $tool ($(command -v "$tool")): the image must not have a compiler"
        fi
    done
    pkg_clean
}

setup_python
