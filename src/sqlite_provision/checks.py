"""The checks that gate activation and prove it: the ABI gate, the host-tools smoke test and
the python verification."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from sqlite_provision.errors import VerifyError
from sqlite_provision.features import provider_of, public_symbols
from sqlite_provision.hostlib import HostLibrary
from sqlite_provision.steps import Argv, Context, Step
from sqlite_provision.verify import read_library, verify_python


@dataclass(frozen=True)
class Verify(Step):
    pythons: Tuple[str, ...]
    min_version: str
    name = "verify"

    def describe(self) -> str:
        return "start {} in a fresh environment and check it loads SQLite >= {} from the prefix".format(
            ", ".join(self.pythons), self.min_version
        )

    def run(self, ctx: Context) -> str:
        layout = ctx.layout
        results = [
            verify_python(
                python,
                prefix=layout.prefix,
                lib_dir=layout.active_lib_dir,
                profile_file=layout.profile_file,
                min_version=self.min_version,
                expected_version=ctx.source.version,
            )
            for python in ctx.pythons
        ]
        ctx.verified = results
        failed = [r for r in results if not r.ok]
        if failed:
            raise VerifyError(
                "verification failed: " + "; ".join(f"{r.python}: {r.problem}" for r in failed),
                hint="see 'Python still shows the old version' in the README; "
                "the previous state was restored",
            )
        return "; ".join(
            f"{r.python} (Python {r.python_version}) loads SQLite {r.sqlite_version} from {r.library}"
            for r in results
        )


@dataclass(frozen=True)
class AbiGate(Step):
    """Before anything is activated: the new library must export every public function the
    system library exports, and carry each of its feature options; otherwise a program linked to
    the system library dies with `undefined symbol` once the snippet reaches it."""

    host: HostLibrary
    allow_loss: bool
    name = "abi"

    def describe(self) -> str:
        if not self.host.path:
            return f"compare with the system library (none found: {self.host.problem})"
        return f"check the new library exports all {len(self.host.symbols)} public functions of {self.host.path} ({self.host.version})"

    def run(self, ctx: Context) -> str:
        from sqlite_provision.elf import exported_functions

        if not self.host.path or not self.host.symbols:
            ctx.warnings.append("ABI gate: no system library to compare with")
            return f"no system library to compare with ({self.host.problem})"
        root = ctx.staged_prefix or ctx.layout.prefix
        library = root / "lib" / "libsqlite3.so.0"
        new_symbols = public_symbols(exported_functions(library))
        missing = sorted(self.host.symbols - new_symbols)
        new_options = set(read_library(library)[1])
        lost_options = sorted(o for o in host_feature_options(self.host) if o not in new_options)
        note = unbuildable_note(self.host)
        if note:
            import sys

            ctx.warnings.append(note)
            sys.stderr.write(f"warning: {note}\n")
        if not missing and not lost_options:
            return (
                note
                + f"exports all {len(self.host.symbols)} public functions of {self.host.path}; {len(new_symbols)} exported in all"
            )
        message = abi_message(missing, lost_options, self.host)
        if not self.allow_loss:
            raise VerifyError(
                message,
                hint="build with --compat host (the default) or --enable the options named; "
                f"--allow-abi-loss overrides, at the risk of breaking programs linked to {self.host.path}",
            )
        ctx.warnings.append("--allow-abi-loss: " + message)
        import sys

        sys.stderr.write(f"warning: --allow-abi-loss: {message}\n")
        return "ABI LOSS ALLOWED: " + message


def unbuildable_note(host: HostLibrary) -> str:
    """What the host library does that no sqlite-autoconf build can (said, not fatal: it is SQL
    syntax, not a symbol a linked program would miss at load time)."""
    from sqlite_provision.features import unbuildable_host_features

    lost = unbuildable_host_features(host.options)
    if not lost:
        return ""
    return (
        f"{host.path} was built with {', '.join(lost)}, which no sqlite-autoconf build can have "
        "(its parser is pre-generated): statements such as DELETE ... LIMIT will be refused with "
        "a syntax error under the new library. "
    )


def host_feature_options(host: HostLibrary) -> List[str]:
    from sqlite_provision.features import host_features

    return host_features(host.options)


def abi_message(missing: List[str], lost_options: List[str], host: HostLibrary) -> str:
    by_option: dict = {}  # type: ignore[type-arg]
    for symbol in missing:
        by_option.setdefault(provider_of(symbol) or "no known option", []).append(symbol)
    parts = [
        "{} (from {})".format(", ".join(symbols), option)
        for option, symbols in sorted(by_option.items())
    ]
    text = "the new library lacks {} public function(s) that {} exports: {}".format(
        len(missing), host.path, "; ".join(parts) or "none"
    )
    if lost_options:
        text += "; and compile options {}".format(", ".join(lost_options))
    return text


@dataclass(frozen=True)
class SmokeTest(Step):
    """The host's package tools, run under exactly the environment the snippet gives: RHEL 9's
    rpm database is SQLite, and Fedora reverted 3.42.0 because dnf broke with it."""

    tools: Tuple[Tuple[str, ...], ...]
    name = "smoke"

    def describe(self) -> str:
        if not self.tools:
            return "no rpm, dnf or yum on this host to smoke-test"
        return "run {} with the new library".format(", ".join(" ".join(t) for t in self.tools))

    def commands(self) -> List[Argv]:
        return [list(t) for t in self.tools]

    def is_satisfied(self, ctx: Context) -> Optional[str]:
        if not self.tools:
            return "no rpm, dnf or yum on this host"
        if not ctx.changed:
            return "nothing changed since the install that passed it"
        return None

    def run(self, ctx: Context) -> str:
        from sqlite_provision.verify import activated_argv, probe_env

        layout = ctx.layout
        env = probe_env(layout.active_lib_dir, layout.profile_file)
        for tool in self.tools:
            argv = activated_argv(list(tool), layout.profile_file)
            result = ctx.runner.capture(argv, env=env, timeout=300)
            if result.returncode != 0:
                output = (result.stdout + result.stderr).strip()
                raise VerifyError(
                    "`{}` fails with the new library (exit status {}): {}".format(
                        " ".join(tool), result.returncode, output[-1500:] or "no output"
                    ),
                    hint="this SQLite would break the host's package tools; the run was rolled "
                    "back. Try another release or --compat host",
                )
        return "passed: {}".format(", ".join(" ".join(t) for t in self.tools))
