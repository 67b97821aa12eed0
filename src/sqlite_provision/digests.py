"""Digests: the expected checksum of a download, and hashing a file. Checksums fail closed.

SHA3-256 is what sqlite.org publishes; SHA-256 is what packagers record.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

from sqlite_provision.errors import ChecksumError, UsageError

HASH_ALGORITHMS = {"sha3_256": "SHA3-256", "sha256": "SHA-256"}

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Checksum:
    """An expected digest. Build it with `parse_checksum` from user input."""

    algorithm: str  # a key of HASH_ALGORITHMS
    hexdigest: str  # 64 lowercase hex characters

    def __post_init__(self) -> None:
        if self.algorithm not in HASH_ALGORITHMS:
            raise ValueError(f"unknown hash algorithm {self.algorithm!r}")
        lowered = self.hexdigest.lower()
        if not _HEX64.fullmatch(lowered):
            raise ValueError(f"not a 64-character hex digest: {self.hexdigest!r}")
        object.__setattr__(self, "hexdigest", lowered)

    @property
    def label(self) -> str:
        """The name people know the algorithm by, e.g. ``SHA3-256``."""
        return HASH_ALGORITHMS[self.algorithm]

    @property
    def tagged(self) -> str:
        """ "sha3_256:<hex>", as the manifest and --dry-run record it."""
        return f"{self.algorithm}:{self.hexdigest}"


def check_algorithm(algorithm: str) -> None:
    if algorithm not in HASH_ALGORITHMS:
        raise UsageError(
            f"unknown hash algorithm {algorithm!r}",
            hint="use one of: {}".format(", ".join(sorted(HASH_ALGORITHMS))),
        )


def parse_checksum(algorithm: str, text: str) -> Checksum:
    """Parse a digest given on the command line; surrounding space and case do not matter."""
    check_algorithm(algorithm)
    value = text.strip().lower()
    if not _HEX64.fullmatch(value):
        option = "--" + algorithm.replace("_", "-")
        cut = value if len(value) <= 80 else value[:77] + "..."
        # Of the right length, it still has a character that is not a hex digit: say so.
        why = "; those are not all hexadecimal digits (0-9, a-f)" if len(value) == 64 else ""
        raise ChecksumError(
            f"{option} must be 64 hex characters, got {len(value)}: {cut!r}{why}",
            hint="copy the {} value exactly as sqlite.org publishes it, or as "
            "`openssl dgst -{}` prints it".format(
                HASH_ALGORITHMS[algorithm], algorithm.replace("_", "-")
            ),
        )
    return Checksum(algorithm, value)


def new_hash(algorithm: str) -> "hashlib._Hash":
    check_algorithm(algorithm)
    return hashlib.new(algorithm)


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The lowercase hex digest of a file, read in chunks."""
    digest = new_hash(algorithm)
    with open(str(path), "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def matches(actual: str, checksum: Checksum) -> bool:
    return hmac.compare_digest(actual, checksum.hexdigest)


def verify_file(path: Path, checksum: Checksum) -> bool:
    """True when `path` is a regular file whose digest matches; False if it is missing."""
    if not path.is_file():
        return False
    return matches(file_digest(path, checksum.algorithm), checksum)


def mismatch(
    name: str, checksum: Checksum, got: str, hint: str, deleted: bool = False
) -> ChecksumError:
    """The one wording of a checksum mismatch: downloads, local tarballs and artifacts."""
    return ChecksumError(
        "checksum mismatch for {}: expected {} {}, got {}{}".format(
            name,
            checksum.label,
            checksum.hexdigest,
            got,
            "; the file was deleted" if deleted else "",
        ),
        hint=hint,
    )
