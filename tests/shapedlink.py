"""A rate-limited link to a real S3 server, for the benchmarks: SeaweedFS runs in its own network namespace
behind a veth pair, and ``tc tbf`` on the host side caps the upload direction. Addresses live only inside the
pair (root needed). Delay, if wanted, comes from a user-space proxy (the kernel here has no netem)."""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edgefleet.localservices import SeaweedS3


@dataclass(frozen=True)
class LinkPlan:
    namespace: str
    host_if: str
    ns_if: str
    host_ip: str
    ns_ip: str
    rate_mbit: float
    burst: str = "32kb"  # tbf needs burst >= rate / HZ
    latency: str = "400ms"


def tbf_burst(rate_mbit: float) -> str:
    """A bucket of at least rate ÷ HZ: 4 kB per Mbit/s (4 ms of the rate), 32 kB at least."""
    return f"{max(32, int(rate_mbit * 4))}kb"


def change_rate(plan: LinkPlan, rate_mbit: float) -> None:
    """The link's new rate, at once (a link that changes speed; connections stay up)."""
    _sh("tc", "qdisc", "change", "dev", plan.host_if, "root", "tbf", "rate", f"{rate_mbit:g}mbit",
        "burst", tbf_burst(rate_mbit), "latency", plan.latency)  # fmt: skip


def sent_bytes(plan: LinkPlan) -> int:
    """Bytes the token bucket passed so far (IP packets: payload, TCP/IP headers, re-transmissions)."""
    out = subprocess.run(["tc", "-s", "qdisc", "show", "dev", plan.host_if], capture_output=True, text=True).stdout
    match = re.search(r"Sent (\d+) bytes", out)
    return int(match.group(1)) if match else 0


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@contextlib.contextmanager
def s3_behind_shaped_link(plan: LinkPlan, directory_prefix: str) -> Iterator[SeaweedS3]:
    ns = plan.namespace
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    _sh("ip", "netns", "add", ns)
    try:
        _sh("ip", "link", "add", plan.host_if, "type", "veth", "peer", "name", plan.ns_if)
        _sh("ip", "link", "set", plan.ns_if, "netns", ns)
        _sh("ip", "addr", "add", f"{plan.host_ip}/30", "dev", plan.host_if)
        _sh("ip", "link", "set", plan.host_if, "up")
        _sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{plan.ns_ip}/30", "dev", plan.ns_if)
        _sh("ip", "netns", "exec", ns, "ip", "link", "set", plan.ns_if, "up")
        _sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        _sh("tc", "qdisc", "add", "dev", plan.host_if, "root", "tbf", "rate", f"{plan.rate_mbit:g}mbit",
            "burst", plan.burst, "latency", plan.latency)  # fmt: skip
        with SeaweedS3(
            directory=Path(tempfile.mkdtemp(prefix=directory_prefix)),
            host=plan.ns_ip,
            command_prefix=["ip", "netns", "exec", ns],
        ) as s3:
            yield s3
    finally:
        subprocess.run(["ip", "link", "del", plan.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
