"""The golden corpus (``tests/golden``): the wire stays compatible across releases (docs/protocol.md,
"Compatibility").

- the current encoder gives, for the corpus' fixed inputs, exactly the bytes committed for this release (a
  change of the wire output is a new corpus, never an accident);
- every golden message of every release decodes with the current code;
- the previous release's decoder (its ``fleet_protocol`` taken from its commit with ``git archive``, run in a
  subprocess) accepts every golden message of this release, except the ones listed in
  ``REFUSED_BY_PREVIOUS`` with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from fleet_base import __version__
from fleet_protocol.codec import encode
from fleet_protocol.messages import ControllerState, Event, Message, QueueReply, QueueRequest
from fleet_protocol.vocabulary import EventKind
from tests.golden.corpus import corpus_files, decode_any, encoded, messages, release_dir, releases

ROOT = Path(__file__).resolve().parents[3]

#: The previous release: main as it was before the compatibility rules (``fleet_base.__version__`` 0.1.0).
#: Pinned by commit, since tags may not travel with a clone. Move it to the newest release on main whenever a
#: release is made (docs/protocol.md, "Compatibility", says how).
PREVIOUS_RELEASE = "417487d564642153f1451165f1ac7ade7df42b6e"

#: Golden messages of this release the previous release refuses, with the reason. Only 417487d needs any: it
#: predates the rule that unknown event kinds are kept. Once the pin is a release with that rule this must
#: be empty (a test below fails when a listed message is accepted).
REFUSED_BY_PREVIOUS: dict[str, str] = {
    "events.disk_low.json": "a new event kind: 417487d's EventKind has no disk_low and it refused unknown kinds",
    "queue_request.json": "a new message kind (queue control): 417487d has no queue topics",
    "queue_reply.json": "a new message kind (queue control): 417487d has no queue topics",
}

_REWRITE = "python -m tests.golden.corpus"


def _name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def test_every_release_has_a_corpus_and_this_one_is_among_them() -> None:
    assert release_dir().is_dir(), f"no golden corpus for release {__version__}: run {_REWRITE}"
    assert releases()[-1] == release_dir(), "the current release must be the newest corpus"


@pytest.mark.parametrize("name", sorted(encoded()))
def test_the_encoder_gives_this_release_corpus(name: str) -> None:
    path = release_dir() / f"{name}.json"
    assert path.exists(), f"{name} has no golden message for release {__version__}: run {_REWRITE}"
    assert encoded()[name] == path.read_bytes(), (
        f"the encoder's output for {name} drifted from {_name(path)}. A wire change is deliberate: if "
        f"{__version__} is released, bump fleet_base.__version__ first; then run {_REWRITE} and commit the files"
    )


@pytest.mark.parametrize("name", ["birth", "telemetry", "assignment"])
def test_the_corpus_sets_every_field_of_the_rich_messages(name: str) -> None:
    """A field left at its default is a field whose wire form no golden message pins down."""
    message = messages()[name]
    unset = sorted(
        f
        for f, info in type(message).model_fields.items()
        if f != "v" and getattr(message, f) == info.get_default(call_default_factory=True)
    )
    assert not unset, f"{name}: set these fields in tests/golden/corpus.py, then run {_REWRITE}: {unset}"


def test_the_corpus_holds_nothing_this_release_does_not_send() -> None:
    stray = sorted(p.stem for p in release_dir().glob("*.json") if p.stem not in encoded())
    assert not stray, f"golden messages this release no longer sends (a removal breaks older receivers): {stray}"


def _decode(path: Path) -> Message | ControllerState | QueueRequest | QueueReply:
    return decode_any(path.stem, path.read_bytes())


@pytest.mark.parametrize("path", corpus_files(), ids=_name)
def test_every_golden_message_of_every_release_decodes(path: Path) -> None:
    message = _decode(path)
    ours, theirs = json.loads(encode(message)), json.loads(path.read_bytes())
    changed = {key: (value, ours[key]) for key, value in theirs.items() if key in ours and ours[key] != value}
    assert not changed, f"fields that do not come back as sent (sent, read): {changed}"
    if isinstance(message, Event):
        kind = path.stem.split(".", 1)[1]
        assert str(message.kind) == kind  # kept as it came, known or not
        assert isinstance(message.kind, EventKind) == (kind in set(EventKind))


# -- the previous release's decoder ----------------------------------------------------------------------------


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=False)


def _previous_release(into: Path) -> Path:
    """The previous release's ``fleet_protocol`` and ``fleet_base`` (what it imports), from its commit."""
    if _git("cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}").returncode != 0:
        shallow = _git("rev-parse", "--is-shallow-repository").stdout.decode().strip()
        pytest.fail(
            f"the previous release's commit {PREVIOUS_RELEASE} is not in this clone "
            f"({'a shallow clone' if shallow == 'true' else 'no such commit or no git history'}): the golden-corpus "
            "test needs the history of main (clone without --depth, or run `git fetch --unshallow`)"
        )
    archive = into / "previous.tar"
    done = _git("archive", "--format=tar", "-o", str(archive), PREVIOUS_RELEASE, "fleet_protocol", "fleet_base")
    assert done.returncode == 0, done.stderr.decode()
    code = into / "code"
    with tarfile.open(archive) as tar:
        tar.extractall(code, filter="data")
    return code


@pytest.fixture(scope="module")
def previous_refusals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    code = _previous_release(tmp_path_factory.mktemp("previous-release"))
    files = sorted(release_dir().glob("*.json"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), str(ROOT)])}
    run = subprocess.run(
        [sys.executable, "-m", "tests.golden.decode", *map(str, files)],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert Path(result["fleet_protocol"]).is_relative_to(code), f"decoded with {result['fleet_protocol']}, not {code}"
    return {Path(path).name: error for path, error in result["refused"].items()}


def test_the_previous_release_accepts_this_release_corpus(previous_refusals: dict[str, str]) -> None:
    unexpected = {name: error for name, error in previous_refusals.items() if name not in REFUSED_BY_PREVIOUS}
    assert not unexpected, f"release {PREVIOUS_RELEASE[:7]} refuses golden messages of {__version__}: {unexpected}"


def test_the_listed_exceptions_are_still_refused(previous_refusals: dict[str, str]) -> None:
    """The list only shrinks: a message the previous release accepts is taken off it."""
    accepted = sorted(set(REFUSED_BY_PREVIOUS) - set(previous_refusals))
    assert not accepted, f"release {PREVIOUS_RELEASE[:7]} accepts {accepted}: remove them from REFUSED_BY_PREVIOUS"


def test_without_the_pinned_commit_the_test_fails_and_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(globals(), "PREVIOUS_RELEASE", "0" * 40)
    with pytest.raises(pytest.fail.Exception, match=r"not in this clone .*clone without --depth"):
        _previous_release(tmp_path)
