"""Host facts, read-only: the OS and its tools, the system libsqlite3, what each python loads,
the ELF reader, and the preconditions checked before any download. Each fact is a command (run
through the one Runner) and a pure parser."""
