"""A loopback HTTP server whose answers a test scripts: for misbehaviour the simulator does
not model (cursor cycles, endless pages, echoed tokens) and as a stand-in proxy."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, bytes]
Script = Callable[[dict[str, Any]], Answer]


def page(items: list[dict[str, Any]], cursor: str | None) -> Answer:
    body = {"data": {"queryV1": {"type": "list", "data": items, "cursor": cursor}}}
    return 200, json.dumps(body).encode()


class ScriptedServer:
    """`script(request_json)` -> (status, body) for every POST; `requests` counts them."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.raw_requests: list[str] = []  # request lines, for the proxy check
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:
                owner.raw_requests.append(self.requestline)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = json.loads(body or b"{}")
                owner.requests.append(request)
                status, answer = owner.script(request)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/graphql"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
