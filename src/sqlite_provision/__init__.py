"""sqlite-provision: a current, verified SQLite under a RHEL-family host's Python."""

__version__ = "0.1.0"


def version_text() -> str:
    """The version, the commit it was built from when this is sqlite-provision.pyz, and the
    python it runs on: "0.1.0 (commit 1a2b3c4d5e6f) on Python 3.6.8"."""
    import importlib
    import platform

    text = __version__
    try:
        build = importlib.import_module("sqlite_provision._build")
        text += " (commit {})".format(getattr(build, "COMMIT", "unknown"))
    except ImportError:
        pass
    return f"{text} on Python {platform.python_version()}"
