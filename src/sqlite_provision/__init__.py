"""sqlite-provision: a current, verified SQLite under a RHEL-family host's Python."""

__version__ = "0.1.0"


def version_text() -> str:
    """The version, and the commit it was built from when this is sqlite-provision.pyz."""
    import importlib

    try:
        build = importlib.import_module("sqlite_provision._build")
    except ImportError:
        return __version__
    return "{} (commit {})".format(__version__, getattr(build, "COMMIT", "unknown"))
