"""How SQLite is built: its feature options (the -D flag, configure option and API of each) and
the configure and make command lines of each build-system era. Pure: no I/O."""

# The feature sets of --compat: every option the system library has on top of Red Hat's, Red
# Hat's only, or upstream's defaults. Here, not in features.py, so that --help need not import it.
COMPAT_MODES = ("host", "rhel", "none")
