"""``edgefleet restore KEY OUT``: the original file back, bit for bit.

OUT may be a folder: the file is then ``OUT/<name from the key>`` (``dawn.flac`` → ``dawn.wav``). Exit 0 when
the file is written and its size and sha256 equal the original's; 1 otherwise, with one line on stderr saying
why. Nothing is left at OUT on failure (the file is written under a temporary name in OUT's folder and moved
into place only once verified), and an existing OUT is never replaced without ``--force``. An object edgefleet
did not write is refused unless ``--raw`` asks for its bytes as they are stored (then nothing is checked).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fleet_base.filenames import safe_text
from fleet_base.s3settings import S3SettingsError, add_s3_arguments, s3_settings_from_args

FAILED = 1


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", help="object key, e.g. recordings/pi-01/2026/11/30/dawn.flac")
    parser.add_argument("out", type=Path, help="where to write the original file (a file, or a folder)")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    parser.add_argument(
        "--raw", action="store_true", help="write the object's bytes as they are stored (no rebuild, no check)"
    )
    add_s3_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from fleet_audio.errors import NotOurObject, RestoreError
    from fleet_audio.restore import STORED, CannotRestore, restore_object, restore_target

    key = args.key
    try:
        settings = s3_settings_from_args(args)
        target = restore_target(args.out, key, as_stored=args.raw)
        result = restore_object(settings.client(), settings.bucket, key, target, force=args.force, as_stored=args.raw)
    except (NotOurObject, CannotRestore, S3SettingsError) as exc:  # their message names what it is about
        print(f"edgefleet restore: {safe_text(str(exc))}", file=sys.stderr)
        return FAILED
    except RestoreError as exc:
        print(f"edgefleet restore: {safe_text(key)}: {safe_text(str(exc))}; nothing written", file=sys.stderr)
        return FAILED
    what = "the object's bytes as stored, not checked" if result.kind == STORED else f"from {result.kind} object"
    print(f"{safe_text(str(target))}: {result.size} bytes, sha256 {result.sha256} ({what} {safe_text(key)})")
    return 0
