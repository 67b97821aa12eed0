"""From a request to a plan, one role per module, for every command that changes the host
(install, build, rollback, uninstall):

- model.py: Command, and the Plan (its steps, each with the plan's reason to skip it).
- inputs.py: before the lock, what the request means on this host, read without writing
  anything (bad input stops here and leaves nothing behind); where a killed run may have left
  something, for the recovery.
- resolve.py (install, build) and resolve_revert.py (rollback, uninstall): under the lock, after
  the recovery, what is installed, `latest`, and each precondition, checked once.
- build.py (install, build) and revert.py (rollback, uninstall): the pure plans, from a
  resolution to the steps, with no I/O; the same Plan feeds --dry-run and the executor.
"""
