"""Errors of the wire protocol.

ProtocolError            anything a receiver must reject (count it, log it, never crash)
 ├── TopicError          a topic outside the ``edgefleet/v1`` namespace, or a bad agent id
 └── PayloadError        not JSON, too large, wrong version, fails validation, or names another agent
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """An invalid topic or message; the peer broke the protocol, not us."""


class TopicError(ProtocolError):
    """The topic is not one of ours or carries an invalid agent id."""


class PayloadError(ProtocolError):
    """The payload cannot be accepted."""
