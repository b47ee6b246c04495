"""A bounded OpenAI-compatible stub server on 127.0.0.1 that can go down and come back.

``_Stub`` is a ``ThreadingHTTPServer`` speaking ``GET /v1/models`` and ``POST
/v1/chat/completions``. With ``outage_after=N`` the request after the N-th answer finds the
server going down: it is stopped (its listening socket closed, so every later attempt is
refused) for ``outage_seconds`` and then started again on the same port. ``status``/``message``
answer every chat request with that error; ``finish_reason`` is what answers report;
``delay`` slows each answer. Daemon threads only; everything is bounded.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "stub/base-vl"


class _Stub:
    """OpenAI-compatible server that can go down after ``outage_after`` answers (see module doc)."""

    def __init__(self, *, outage_after: int | None = None, outage_seconds: float = 2.0,
                 status: int = 200, message: str = "", finish_reason: str = "stop", delay: float = 0.0) -> None:
        self.outage_after, self.outage_seconds, self.delay = outage_after, outage_seconds, delay
        self.status, self.message, self.finish_reason = status, message, finish_reason
        self.lock = threading.Lock()
        self.answered = 0
        self.chat_requests = 0
        self.down = threading.Event()
        self.up_again = threading.Event()
        self.port = 0
        self.httpd: ThreadingHTTPServer | None = None
        self._start()

    # -- life cycle ------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "vllm"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if not self.path.startswith("/v1/"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                with stub.lock:
                    stub.chat_requests += 1
                    outage = stub.outage_after is not None and stub.answered >= stub.outage_after \
                        and not stub.down.is_set()
                    if outage:
                        stub.down.set()
                if outage:  # the server goes down under this request: no answer, connection dropped
                    threading.Thread(target=stub._outage, daemon=True).start()
                    stub.stopped.wait(5)
                    self.close_connection = True
                    return
                if stub.status != 200:
                    self._send(stub.status, {"object": "error", "message": stub.message, "type": "BadRequestError",
                                             "code": stub.status})
                    return
                text = next(p["text"] for p in body["messages"][-1]["content"] if p["type"] == "text")
                if stub.delay:
                    time.sleep(stub.delay)
                n = len(text) % 7
                reply = f"<think>Looks familiar.</think><answer>Coordinates: ({10 + n}.25, {20 + n}.5)</answer>"
                with stub.lock:
                    stub.answered += 1
                self._send(200, {
                    "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                                 "finish_reason": stub.finish_reason}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                })

        return Handler

    def _start(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.stopped = threading.Event()
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        assert self.httpd is not None
        self.httpd.shutdown()
        self.httpd.server_close()  # later connections are refused
        self.stopped.set()

    def _outage(self) -> None:
        self.stop()
        time.sleep(self.outage_seconds)
        self._start()
        self.up_again.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "_Stub":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.down.is_set():
            self.up_again.wait(10)
        if self.httpd is not None and not self.stopped.is_set():
            self.stop()
