"""A one-shot HTTP server on 127.0.0.1 that receives the bank's redirect after consent."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlsplit

CALLBACK_PATH = "/callback"
_PAGE = b"<html><body><h3>bankflow: consent received.</h3>You can close this tab.</body></html>"


class CallbackServer:
    """Listens until the first request to /callback and keeps its full URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._received = threading.Event()
        self._url: str | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if urlsplit(self.path).path != CALLBACK_PATH:
                    self.send_error(404)
                    return
                server._url = f"http://{host}:{server.port}{self.path}"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(_PAGE)
                server._received.set()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                # The query holds the authorisation code: keep it out of the terminal.
                return

        self._httpd = HTTPServer((host, port), Handler)
        self.port = self._httpd.server_address[1]
        self.redirect_uri = f"http://{host}:{self.port}{CALLBACK_PATH}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> CallbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def wait(self, timeout: float) -> str:
        """The URL the browser was redirected to; TimeoutError if consent did not come back in time."""
        if not self._received.wait(timeout):
            raise TimeoutError(f"no redirect to {self.redirect_uri} within {timeout:.0f} s")
        assert self._url is not None
        return self._url
