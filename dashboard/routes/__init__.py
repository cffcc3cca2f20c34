"""HTTP routes: ``auth`` (login/logout), ``pages`` (HTML), ``api`` (JSON), ``stream`` (SSE), ``metrics``,
``apidocs`` (Swagger UI)."""
