"""``edgefleet verify KEY ORIGINAL``: exit 0 only when the stored object gives back ORIGINAL bit for bit.

Exit codes: 0 match, 1 mismatch (or an object that is inconsistent in itself), 2 could not check (invalid key,
no such object, an object edgefleet did not write, S3 unreachable, ORIGINAL unreadable, bad settings).
``--raw`` compares the object's bytes as they are stored with ORIGINAL.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fleet_base.filenames import safe_text
from fleet_base.s3settings import S3SettingsError, add_s3_arguments, s3_settings_from_args

MISMATCH = 1
CANNOT_CHECK = 2


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", help="object key")
    parser.add_argument("original", type=Path, help="the original local file")
    parser.add_argument("--raw", action="store_true", help="compare the object's bytes as they are stored")
    add_s3_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from fleet_audio.errors import NotOurObject, RestoreError
    from fleet_audio.restore import CannotRestore, verify_object

    key = safe_text(args.key)
    try:
        settings = s3_settings_from_args(args)
        verdict = verify_object(settings.client(), settings.bucket, args.key, args.original, as_stored=args.raw)
    except (NotOurObject, CannotRestore, S3SettingsError) as exc:
        print(f"edgefleet verify: cannot check: {safe_text(str(exc))}", file=sys.stderr)
        return CANNOT_CHECK
    except RestoreError as exc:
        print(f"edgefleet verify: {key}: MISMATCH: {safe_text(str(exc))}", file=sys.stderr)
        return MISMATCH
    print(f"{key} vs {safe_text(str(args.original))}: {verdict.describe()}")
    return 0 if verdict.matches else MISMATCH
