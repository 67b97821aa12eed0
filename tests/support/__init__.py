"""What the tests share: the loopback mirror, running the CLI, snapshots of the host, the RHEL
look-alikes, the fault matrix's host, and the wheelhouse. Not tests themselves."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
TESTS_DIR = REPO_ROOT / "tests"
