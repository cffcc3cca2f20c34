"""Metadata chunks as real recorders write them (for recmeta and catalog tests).

- ``bext``: EBU Tech 3285 v1 (as Sound Devices, Zoom F-series, Tascam write it), coding history after 602 bytes;
- ``guan``: GUANO 1.0 as Wildlife Acoustics Song Meter / Pettersson / Titley write it (UTF-8 ``key: value``);
- ``iXML``: iXML 2.x as Sound Devices writes it (PROJECT/SCENE/TAKE/NOTE, a BEXT copy);
- AudioMoth writes none of these: its time is the file name (``YYYYMMDD_HHMMSS.WAV``, UTC) and an ICMT comment.
"""

from __future__ import annotations

import struct

from tests.corpus import list_info_payload


def bext(date: str = "2026-05-28", time: str = "06:15:00", *, description: str = "dawn chorus",
         originator: str = "MixPre-6 II", reference: str = "USSDVBN0528061500", time_reference: int = 0,
         history: str = "A=PCM,F=48000,W=24,M=stereo,T=MixPre-6 II\r\n") -> bytes:  # fmt: skip
    body = description.encode()[:256].ljust(256, b"\0") + originator.encode()[:32].ljust(32, b"\0")
    body += reference.encode()[:32].ljust(32, b"\0") + date.encode()[:10].ljust(10, b"\0")
    body += time.encode()[:8].ljust(8, b"\0") + struct.pack("<QH", time_reference, 1)
    return body.ljust(602, b"\0") + history.encode()


def guano(timestamp: str = "2026-05-28T06:15:00-04:00", **extra: str) -> bytes:
    fields = {
        "GUANO|Version": "1.0",
        "Make": "Wildlife Acoustics, Inc.",
        "Model": "Song Meter Mini Bat",
        "Serial": "SMU07171",
        "Timestamp": timestamp,
        "Loc Position": "42.44986 -76.47889",
        "Temperature Int": "18.25",
        "Samplerate": "384000",
        **extra,
    }
    return "\n".join(f"{k}: {v}" for k, v in fields.items() if v != "-").encode() + b"\n"


def ixml(date: str = "2026-05-28", time: str = "06:15:00", *, note: str = "north hide") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<BWFXML><IXML_VERSION>2.10</IXML_VERSION><PROJECT>Marsh survey</PROJECT><SCENE>S12</SCENE><TAKE>3</TAKE>
<TAPE>260528</TAPE><NOTE>{note}</NOTE>
<BEXT><BWF_DESCRIPTION>dawn</BWF_DESCRIPTION><BWF_ORIGINATOR>Sound Devices</BWF_ORIGINATOR>
<BWF_ORIGINATION_DATE>{date}</BWF_ORIGINATION_DATE><BWF_ORIGINATION_TIME>{time}</BWF_ORIGINATION_TIME></BEXT>
</BWFXML>""".encode()


def audiomoth_info() -> bytes:
    return list_info_payload(
        ICMT="Recorded at 06:15:00 28/05/2026 (UTC) by AudioMoth 24F319055F5BE2B8 at medium gain, battery 4.2V",
        IART="AudioMoth 24F319055F5BE2B8",
    )
