"""``edgefleet verify KEY ORIGINAL``: exit 0 only when the stored object gives back ORIGINAL bit for bit.

Exit codes: 0 match, 1 mismatch (or an object that is inconsistent in itself), 2 could not check (no such
object, S3 unreachable, ORIGINAL unreadable, bad settings).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_agent.s3settings import add_s3_arguments, s3_settings_from_args

MISMATCH = 1
CANNOT_CHECK = 2


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", help="object key")
    parser.add_argument("original", type=Path, help="the original local file")
    add_s3_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from edge_agent.audio.errors import RestoreError
    from edge_agent.audio.restore import FAILURES, verify_object

    try:
        settings = s3_settings_from_args(args)
        verdict = verify_object(settings.client(), settings.bucket, args.key, args.original)
    except RestoreError as exc:
        print(f"edgefleet verify: {args.key}: MISMATCH: {exc}", file=sys.stderr)
        return MISMATCH
    except FAILURES as exc:
        print(f"edgefleet verify: {args.key}: cannot check: {exc}", file=sys.stderr)
        return CANNOT_CHECK
    print(f"{args.key} vs {args.original}: {verdict.describe()}")
    return 0 if verdict.matches else MISMATCH
