"""``edgefleet restore KEY OUT.wav``: the original file back, bit for bit (DESIGN §7).

Exit 0 when OUT.wav is written and its size and sha256 equal the original's; 1 otherwise (nothing is left at
OUT.wav then: the file is written under a temporary name and renamed only once verified).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_agent.s3settings import add_s3_arguments, s3_settings_from_args


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", help="object key, e.g. recordings/pi-01/2026/11/30/dawn.flac")
    parser.add_argument("out", type=Path, help="where to write the original file")
    add_s3_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from edge_agent.audio.restore import FAILURES, restore_object

    try:
        settings = s3_settings_from_args(args)
        result = restore_object(settings.client(), settings.bucket, args.key, args.out)
    except FAILURES as exc:
        print(f"edgefleet restore: {args.key}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out}: {result.size} bytes, sha256 {result.sha256} (from {result.kind} object {args.key})")
    return 0
