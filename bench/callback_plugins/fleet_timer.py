"""bench/fleet.py's Ansible callback: the wall seconds of each task of a play, summed over its
runs (a task of the build's loop runs once per group), printed at the end as
`TIMER SECONDS xRUNS NAME`. Enabled only by the bench (ANSIBLE_CALLBACKS_ENABLED=fleet_timer)."""

import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fleet_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.started = 0.0
        self.name = ""
        self.seconds: dict = {}  # type: ignore[type-arg]

    def _stop(self) -> None:
        if self.name:
            total, runs = self.seconds.get(self.name, (0.0, 0))
            self.seconds[self.name] = (total + time.monotonic() - self.started, runs + 1)
        self.name = ""

    def v2_playbook_on_task_start(self, task, is_conditional):  # type: ignore[no-untyped-def]
        self._stop()
        # A task of the build's loop names its group: count the runs of one task together.
        self.name = task.get_name().split(" sqlite_provision_fleet_")[0].rstrip(" :")
        self.started = time.monotonic()

    def v2_playbook_on_stats(self, stats):  # type: ignore[no-untyped-def]
        self._stop()
        for name, (total, runs) in sorted(self.seconds.items(), key=lambda item: -item[1][0]):
            self._display.display(f"TIMER {total:.2f} x{runs} {name}")
