"""A webhook receiver written for the tests (the alert and the recording-event deliveries): records each POST."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """A webhook receiver on ``port``: records each POST (its headers and JSON body)."""

    def __init__(self, port: int, answer: int = 200, headers: dict[str, str] | None = None) -> None:
        self.port = port
        self.answer, self.headers = answer, headers or {}
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.raw: list[tuple[dict[str, str], bytes]] = []  # the same requests, the body as received
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        received, raw, answer, extra = self.received, self.raw, self.answer, self.headers

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                raw.append((dict(self.headers), body))
                received.append((dict(self.headers), json.loads(body)))
                self.send_response(answer)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def about(self, agent_id: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        """(headers, body) of every notification about ``agent_id``, in the order received (the controller's own
        alerts, e.g. a thread that is not running yet, are delivered to the same receiver)."""
        return [
            (headers, body)
            for headers, body in list(self.received)
            if any(alert["labels"].get("agent") == agent_id for alert in body["alerts"])
        ]

    def of(self, agent_id: str) -> list[tuple[str, str]]:
        """(status, alertname) of every notification about ``agent_id``."""
        return [
            (body["status"], alert["labels"]["alertname"])
            for _headers, body in self.about(agent_id)
            for alert in body["alerts"]
            if alert["labels"].get("agent") == agent_id
        ]
