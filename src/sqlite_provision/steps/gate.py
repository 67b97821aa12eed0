"""The checks that gate activation and prove it: the ABI gate, the host-tools smoke test and the
verification of each python."""

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from sqlite_provision.errors import SmokeTestFailed, VerifyError
from sqlite_provision.faultpoints import crash_point
from sqlite_provision.host.elf import exported_functions
from sqlite_provision.host.library import SystemLibrary
from sqlite_provision.host.pythons import (
    ProofSpec,
    Reach,
    activated_argv,
    library_argv,
    probe_env,
    probe_library,
    verification_failed,
    verify_python,
)
from sqlite_provision.recipe.api import added_after
from sqlite_provision.recipe.features import (
    provider_of,
    public_symbols,
    system_features,
    unbuildable_system_features,
)
from sqlite_provision.recipe.obsolete import built_in, judge, proofs_for
from sqlite_provision.steps.base import Argv, RunState, Step
from sqlite_provision.versions import loose_version


@dataclass(frozen=True)
class AbiGate(Step):
    """Before anything is activated: the new library must export every public function the
    system library exports, and carry each of its feature options; otherwise a program linked to
    the system library dies with `undefined symbol` once the activation reaches it. An option a
    later release builds in (recipe/obsolete.py: ENABLE_JSON1 from 3.38.0) is kept when the new
    library is that recent and proves the capability: the probe runs it under the new library."""

    system_lib: SystemLibrary
    allow_loss: bool
    library: Path  # the staged library, or the installed one when the build is skipped
    version: str = ""  # the new library's release, for what an older release cannot have
    name = "abi-gate"

    @property
    def comparable(self) -> bool:
        return bool(self.system_lib.path and self.system_lib.symbols)

    def describe(self) -> str:
        if not self.system_lib.path:
            return f"compare with the system library (none found: {self.system_lib.problem})"
        proved = sorted(self.proofs()) if self.comparable else []
        return (
            f"check the new library exports all {len(self.system_lib.symbols)} public functions of "
            f"{self.system_lib.path} ({self.system_lib.version}) and has its feature options"
            + (
                f"; {', '.join(proved)}, built in by later releases, proved by running it"
                if proved
                else ""
            )
        )

    def compared(self) -> List[str]:
        """The host's feature options the new library must keep: those the host lists, and those
        built in to the host's own release, which it has without listing them (obsolete.built_in:
        JSON on a 3.38.0 or later host)."""
        listed = system_features(self.system_lib.options)
        implied = built_in(loose_version(self.system_lib.version or ""), self.system_lib.options)
        return listed + [o for o in system_features(implied) if o not in listed]

    def said_lost(self, lost: Sequence[str]) -> List[str]:
        """Each lost option as the message says it: one the system library has only because its
        release builds it in (it lists no such option) is named as built in, not as built with."""
        listed = set(system_features(self.system_lib.options))
        release = self.system_lib.version or ""
        return [
            entry if entry.split(" ", 1)[0] in listed
            else f"{entry} (built in to {release}, which lists no such option)"
            for entry in lost
        ]  # fmt: skip

    def proofs(self) -> Dict[str, ProofSpec]:
        """What the new library must prove it does: the host's options a later release builds
        in, so that no newer library can list them."""
        return {o: p.as_json() for o, p in proofs_for(self.compared()).items()}

    def commands(self) -> List[Argv]:
        return [library_argv(self.library, self.proofs())] if self.comparable else []

    def run(self, state: RunState) -> str:
        if not self.comparable:
            state.warn("ABI gate: no system library to compare with")
            return f"no system library to compare with ({self.system_lib.problem})"
        new_symbols = public_symbols(exported_functions(self.library))
        missing = sorted(self.system_lib.symbols - new_symbols)
        reading = probe_library(state.runner, self.library, self.proofs())
        judged = judge(
            self.compared(),
            loose_version(reading.version),
            reading.options,
            reading.proofs,
        )
        note = unbuildable_note(self.system_lib)
        if note:
            state.warn(note)
        if not missing and not judged.lost:
            return "; ".join(
                [
                    f"exports all {len(self.system_lib.symbols)} public functions of {self.system_lib.path}",
                    f"{len(new_symbols)} exported in all",
                    *judged.kept,
                ]
            )
        message = abi_message(missing, self.said_lost(judged.lost), self.system_lib, self.version)
        if not self.allow_loss:
            raise VerifyError(message, hint=abi_hint(judged.omitted, self.system_lib))
        state.warn("--allow-abi-loss: " + message)
        return "ABI LOSS ALLOWED: " + message


def abi_hint(omitted: Sequence[str], system_lib: SystemLibrary) -> str:
    unset = "".join(f"; drop -DSQLITE_{option} from CFLAGS" for option in omitted)
    return (
        f"build with --compat host (the default) or --enable the options named{unset}; "
        f"--allow-abi-loss overrides, at the risk of breaking programs linked to {system_lib.path}"
    )


def unbuildable_note(system_lib: SystemLibrary) -> str:
    """What the system library does that no sqlite-autoconf build can (said, not fatal: it is SQL
    syntax, not a symbol a linked program would miss at load time)."""
    lost = unbuildable_system_features(system_lib.options)
    if not lost:
        return ""
    return (
        f"{system_lib.path} was built with {', '.join(lost)}, which no sqlite-autoconf build can have "
        "(its parser is pre-generated): statements such as DELETE ... LIMIT will be refused with "
        "a syntax error under the new library"
    )


def abi_message(
    missing: List[str], lost_options: List[str], system_lib: SystemLibrary, version: str = ""
) -> str:
    """What the new library lacks, and only that: each missing function by why (the option that
    provides it, or the release that added it: a function no option of this release can bring
    back), then each compile option of the system library it lacks."""
    said = []
    if missing:
        why = missing_words(missing, version)
        said.append(
            f"the new library lacks {len(missing)} public function(s) that {system_lib.path} exports: "
            + why
        )
    if lost_options:
        lead = "and" if missing else "the new library lacks"
        said.append(
            f"{lead} compile option(s) that {system_lib.path} has: " + ", ".join(lost_options)
        )
    return "; ".join(said)


def missing_words(missing: List[str], version: str) -> str:
    added = dict(added_after(version, missing)) if version else {}
    by_option: Dict[str, List[str]] = {}
    for symbol in missing:
        if symbol in added:
            why = f"added in {added[symbol]}, after {version}"
        else:
            why = "from " + (provider_of(symbol) or "no known option")
        by_option.setdefault(why, []).append(symbol)
    return "; ".join(
        "{} ({})".format(", ".join(symbols), why) for why, symbols in sorted(by_option.items())
    )


@dataclass(frozen=True)
class SmokeTest(Step):
    """The host's package tools, run under exactly the environment the snippet gives: RHEL 9's
    rpm database is SQLite, and Fedora reverted 3.42.0 because dnf broke with it."""

    tools: Tuple[Tuple[str, ...], ...]
    lib_dir: Path
    profile_file: Optional[Path]
    name = "smoke-test"
    unless_changed = "nothing changed since the install that passed it"

    def describe(self) -> str:
        if not self.tools:
            return "no rpm, dnf or yum on this host to smoke-test"
        return "run {} with the new library".format(", ".join(" ".join(t) for t in self.tools))

    def commands(self) -> List[Argv]:
        return [activated_argv(list(tool), self.profile_file) for tool in self.tools]

    def run(self, state: RunState) -> str:
        env = probe_env(state.runner.environment, self.lib_dir, self.profile_file)
        for tool, argv in zip(self.tools, self.commands()):
            result = state.runner.capture(argv, env=env, timeout=300)
            if result.returncode != 0:
                output = (result.stdout + result.stderr).strip().splitlines()
                raise SmokeTestFailed(
                    "`{}` fails with the new library (exit status {}): {}".format(
                        " ".join(tool),
                        result.returncode,
                        output[-1][-300:] if output else "no output",
                    ),
                    hint="this SQLite would break the host's package tools; the run was rolled "
                    "back. Try another release or --compat host",
                    tail=state.runner.log.tail(),
                )
        return "passed: {}".format(", ".join(" ".join(t) for t in self.tools))


@dataclass(frozen=True)
class Verify(Step):
    """Each python, started as the processes that need the library start it (a login shell, a
    bound venv's python with no environment, a unit with its drop-in), loads it from the
    prefix at the version installed. A failure is said as `failure`, then why, then `after`."""

    reaches: Tuple[Reach, ...]
    min_version: str
    prefix: Path
    expected_version: str
    failure: str = "verification failed"
    after: str = ""  # what the undo leaves, when the failure's words alone do not say it
    hint: str = "see 'Who sees the new library' in the README; the previous state was restored"
    name = "verify"

    def describe(self) -> str:
        return "start {} and check each loads SQLite >= {} from the prefix ({})".format(
            ", ".join(sorted({r.python for r in self.reaches})),
            self.min_version,
            "; ".join(sorted({r.how for r in self.reaches})),
        )

    def commands(self) -> List[Argv]:
        return [list(reach.argv) for reach in self.reaches]

    def run(self, state: RunState) -> str:
        results = []
        for reach in self.reaches:
            results.append(
                verify_python(
                    state.runner,
                    reach,
                    prefix=self.prefix,
                    min_version=self.min_version,
                    expected_version=self.expected_version,
                )
            )
            crash_point("during:verify")
        state.verified = results
        if not all(r.ok for r in results):
            raise verification_failed(results, self.hint, self.failure, self.after)
        return "; ".join(
            f"{r.python} ({r.reached}, Python {r.python_version}) loads SQLite "
            f"{r.sqlite_version} from {r.library}"
            for r in results
        )


@dataclass(frozen=True)
class FindStale(Step):
    """The running processes that still map another libsqlite3 than the one just activated
    (read from /proc; nothing is changed): they keep the old library until they restart."""

    library: Path
    name = "find-stale"

    def describe(self) -> str:
        return f"list the running processes that map another libsqlite3 than {self.library}"

    def run(self, state: RunState) -> str:
        from sqlite_provision.host.processes import stale_processes

        state.stale, unreadable = stale_processes(self.library)
        note = f" ({unreadable} could not be read)" if unreadable else ""
        return f"{len(state.stale)} running process(es) still map another libsqlite3{note}"
