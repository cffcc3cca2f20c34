"""A stand-in sub-command for the program's ending (see test_cli.py): what it prints, and whether the
interpreter's teardown ran after it (an ``atexit`` handler)."""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("code", type=int)


def run(args: argparse.Namespace) -> int:
    atexit.register(lambda: print("teardown ran", file=sys.stderr, flush=True))
    print(f"result OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}", end="")  # buffered
    logging.getLogger("stand-in").warning("logged")
    return int(args.code)
