"""The Mind Mate app the demo protects: which release is live, and its /health endpoint.

Why this module exists: the demo's story only holds if the metrics, the health check and the
rollback agree about one app. Here the app's state is read from the fake Vercel and Railway
servers (the same ones the operator talks to), so when the operator moves the frontend and
backend back to the previous release, errors stop and `/health` turns green on their own,
without the demo telling anything what happened.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sandbox.fakes.saas import Saas


@dataclass
class App:
    """The app as users see it: a bad release live and failing, or not."""

    saas: Saas
    spiking: threading.Event = field(default_factory=threading.Event)
    """Set when the bad release starts failing under load (the demo's incident begins)."""

    def bad_release_live(self) -> bool:
        """Whether the frontend or the backend still serves the bad release."""
        frontend = self.saas.live_frontend() == self.saas.live
        backend = self.saas.railway.active_deployment(self.saas.service, self.saas.env)
        return frontend or backend == self.saas.railway_live

    def failing(self) -> bool:
        """The bad release is live and the incident has begun."""
        return self.spiking.is_set() and self.bad_release_live()

    def health(self) -> tuple[int, str]:
        """What GET /health answers: 200 only when the app serves users properly."""
        if self.saas.vercel.project(self.saas.project).paused:
            return 503, "frontend paused"
        if not self.saas.backend_serving():
            return 503, "backend stopped"
        if self.failing():
            return 503, "bad release: 50% of requests fail"
        return 200, "ok"


@contextmanager
def serving(app: App) -> Iterator[str]:
    """Serve `app`'s /health on a free loopback port; yields the health URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, text = app.health() if self.path == "/health" else (404, "not found")
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="demo-app", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health"
    finally:
        server.shutdown()
        server.server_close()
