"""sqlite-provision: a current, verified SQLite under a RHEL-family host's Python."""

__version__ = "0.1.0"
