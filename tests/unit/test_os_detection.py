"""Layer 1: RHEL-family detection (host/facts.py: read_os and OsInfo.rhel_family) on the
os-release files of the distributions the README names, written into a temporary root and read
with read_os(root), as the tool reads HostPaths.os_root (/ on a host). The files are those the
distributions ship (trimmed of URLs and support lines that do not matter here)."""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import pytest

from sqlite_provision.host.facts import OsInfo, read_os

OL8 = """\
NAME="Oracle Linux Server"
VERSION="8.9"
ID="ol"
ID_LIKE="fedora"
VARIANT="Server"
VARIANT_ID="server"
VERSION_ID="8.9"
PLATFORM_ID="platform:el8"
PRETTY_NAME="Oracle Linux Server 8.9"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:oracle:linux:8:9:server"
HOME_URL="https://linux.oracle.com/"
"""

AMZN2 = """\
NAME="Amazon Linux"
VERSION="2"
ID="amzn"
ID_LIKE="centos rhel fedora"
VERSION_ID="2"
PRETTY_NAME="Amazon Linux 2"
ANSI_COLOR="0;33"
CPE_NAME="cpe:2.3:o:amazon:amazon_linux:2"
HOME_URL="https://amazonlinux.com/"
"""

AMZN2023 = """\
NAME="Amazon Linux"
VERSION="2023"
ID="amzn"
ID_LIKE="fedora"
VERSION_ID="2023"
PLATFORM_ID="platform:al2023"
PRETTY_NAME="Amazon Linux 2023.4.20240416"
ANSI_COLOR="0;33"
CPE_NAME="cpe:2.3:o:amazon:amazon_linux:2023"
HOME_URL="https://aws.amazon.com/linux/amazon-linux-2023/"
"""

CENTOS7 = """\
NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
PRETTY_NAME="CentOS Linux 7 (Core)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:centos:centos:7"
HOME_URL="https://www.centos.org/"
"""

CENTOS_STREAM9 = """\
NAME="CentOS Stream"
VERSION="9"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="9"
PLATFORM_ID="platform:el9"
PRETTY_NAME="CentOS Stream 9"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:centos:centos:9"
HOME_URL="https://centos.org/"
"""

ROCKY9 = """\
NAME="Rocky Linux"
VERSION="9.3 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"
ANSI_COLOR="0;32"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:rocky:rocky:9::baseos"
HOME_URL="https://rockylinux.org/"
"""

ALMA9 = """\
NAME="AlmaLinux"
VERSION="9.3 (Shamrock Pampas Cat)"
ID="almalinux"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="AlmaLinux 9.3 (Shamrock Pampas Cat)"
ANSI_COLOR="0;34"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:almalinux:almalinux:9::baseos"
HOME_URL="https://almalinux.org/"
"""

DEBIAN12 = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"""

UBUNTU2204 = """\
PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
"""

OPENSUSE = """\
NAME="openSUSE Leap"
VERSION="15.5"
ID="opensuse-leap"
ID_LIKE="suse opensuse"
VERSION_ID="15.5"
PRETTY_NAME="openSUSE Leap 15.5"
"""


def os_root(tmp_path: Path, text: str) -> str:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text(text)
    return str(tmp_path)


# (os-release, version, ID_LIKE, pretty name)
RHEL_FAMILY = {
    "ol8": (OL8, "8.9", ("fedora",), "Oracle Linux Server 8.9"),
    "amzn2": (AMZN2, "2", ("centos", "rhel", "fedora"), "Amazon Linux 2"),
    "amzn2023": (AMZN2023, "2023", ("fedora",), "Amazon Linux 2023.4.20240416"),
    "centos7": (CENTOS7, "7", ("rhel", "fedora"), "CentOS Linux 7 (Core)"),
    "centos-stream9": (CENTOS_STREAM9, "9", ("rhel", "fedora"), "CentOS Stream 9"),
    "rocky9": (ROCKY9, "9.3", ("rhel", "centos", "fedora"), "Rocky Linux 9.3 (Blue Onyx)"),
    "almalinux9": (ALMA9, "9.3", ("rhel", "centos", "fedora"),
                   "AlmaLinux 9.3 (Shamrock Pampas Cat)"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(RHEL_FAMILY))
def test_rhel_family_distributions_are_detected(tmp_path: Path, name: str) -> None:
    text, version, like, pretty = RHEL_FAMILY[name]
    found = read_os(os_root(tmp_path, text))
    assert (found.version, found.like, found.name) == (version, like, pretty)
    assert found.rhel_family is True


@pytest.mark.parametrize(
    "text", [DEBIAN12, UBUNTU2204, OPENSUSE], ids=["debian12", "ubuntu2204", "opensuse"]
)
def test_other_distributions_are_not(tmp_path: Path, text: str) -> None:
    assert read_os(os_root(tmp_path, text)).rhel_family is False


# By ID alone: images that trimmed ID_LIKE, and the family's members with no RHEL-like parent.
BY_ID = [
    pytest.param("amzn", id="amzn"),
    pytest.param("centos", id="centos"),
    pytest.param("rocky", id="rocky"),
    pytest.param("almalinux", id="almalinux"),
    pytest.param("rhel", id="rhel"),
    pytest.param("fedora", id="fedora"),
    pytest.param("ol", id="ol"),  # distro reports it as "oracle"
]


@pytest.mark.parametrize("os_id", BY_ID)
def test_the_family_is_known_by_id_without_id_like(tmp_path: Path, os_id: str) -> None:
    text = f'NAME="Some {os_id}"\nID="{os_id}"\nVERSION_ID="9"\n'
    assert read_os(os_root(tmp_path, text)).rhel_family is True


@pytest.mark.parametrize(
    "like, expected",
    [(("rhel", "fedora"), True), (("centos",), True), (("debian",), False), ((), False)],
)
def test_an_unknown_id_counts_by_id_like(like: Tuple[str, ...], expected: bool) -> None:
    assert OsInfo("eurolinux", "9", like, "EuroLinux 9").rhel_family is expected
