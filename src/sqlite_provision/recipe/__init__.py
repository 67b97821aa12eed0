"""How SQLite is built: its feature options (the -D flag, configure option and API of each) and
the configure and make command lines of each build-system era. Pure: no I/O."""
