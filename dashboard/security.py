"""Security headers on every response the dashboard sends: pages, API, errors (500 too), static files, /docs.

Every script and style is a file under ``/static`` (no inline ``<script>``, ``style=`` or ``on…=``), so the
Content-Security-Policy allows ``'self'`` only. ``img-src data:`` is for the SVG icons inside Swagger UI's
stylesheet. HSTS is sent when browsers reach the dashboard over https (``tls_cert_file`` or
``behind_tls_proxy``). Responses other than static files are not cached (they show who is logged in and
the fleet), unless the route set its own ``Cache-Control``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HSTS = "max-age=31536000"


def security_headers(over_tls: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode("ascii")),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"cross-origin-resource-policy", b"same-origin"),
    ]
    if over_tls:
        headers.append((b"strict-transport-security", HSTS.encode("ascii")))
    return headers


class SecurityHeadersMiddleware:
    """Pure ASGI (streaming-safe): adds the headers to every ``http.response.start`` that lacks them."""

    def __init__(self, app: ASGIApp, over_tls: bool) -> None:
        self.app = app
        self.headers = security_headers(over_tls)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in self.headers if name not in present]
                if not static and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
