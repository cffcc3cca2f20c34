"""The single ``edgefleet`` entry point (DESIGN §7).

Each sub-command lives in its own module, imported only when it runs, so a Pi that has only
the ``agent`` extra never imports FastAPI or SQLModel. A command module provides::

    def configure(parser: argparse.ArgumentParser) -> None   # add its arguments
    def run(args: argparse.Namespace) -> int                  # do the work, return the exit code
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

from edgefleet import __version__

NOT_BUILT_EXIT = 3


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    help: str


COMMANDS: tuple[Command, ...] = (
    Command("demo", "edgefleet.demo", "run the whole system on this machine"),
    Command("agent", "edge_agent.service.main", "run the edge agent service (on a Pi)"),
    Command("controller", "controller.service.main", "run the fleet controller service"),
    Command("dashboard", "dashboard.main", "run the operators' dashboard"),
    Command("upload", "edge_agent.cli_upload", "compress and upload recordings once, resumably"),
    Command("restore", "edge_agent.cli_restore", "download an object and rebuild the original WAV"),
    Command("verify", "edge_agent.cli_verify", "check a stored object against the original file"),
    Command("simulate", "edgefleet.simulate", "run simulated Raspberry Pi agents"),
)


def _load(command: Command) -> ModuleType | None:
    try:
        return importlib.import_module(command.module)
    except ModuleNotFoundError as exc:
        # Only "this command is not built (or its extra is not installed)" is treated softly;
        # any other import failure is a bug and propagates.
        if exc.name and (command.module.startswith(exc.name) or exc.name in _EXTRA_MODULES):
            return None
        raise


_EXTRA_MODULES = {"fastapi", "uvicorn", "sqlmodel", "sqlalchemy", "pyflac", "minio", "paho", "numpy"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgefleet", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"edgefleet {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub.add_parser(command.name, help=command.help, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    top, rest = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if top.verbose > 1 else logging.INFO if top.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    command = next(c for c in COMMANDS if c.name == top.command)
    module = _load(command)
    if module is None:
        print(
            f"edgefleet {command.name}: not built yet (or its extra is not installed); see README.md",
            file=sys.stderr,
        )
        return NOT_BUILT_EXIT
    sub_parser = argparse.ArgumentParser(prog=f"edgefleet {command.name}", description=command.help)
    module.configure(sub_parser)
    args = sub_parser.parse_args(rest)
    args.verbose = top.verbose
    try:
        return int(module.run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
