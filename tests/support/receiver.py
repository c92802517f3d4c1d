"""A real HTTP server on 127.0.0.1 that records what it receives and answers as told."""

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    def __init__(self):
        self.received: list[Received] = []
        # Returns a status, or (status, body).
        self.answer: Callable[[Received], int | tuple[int, bytes]] = lambda request: 200
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                answer = receiver.answer(request)
                status, reply = answer if isinstance(answer, tuple) else (answer, b'{"ok": true}')
                with receiver._arrived:
                    receiver.received.append(request)
                    receiver._arrived.notify_all()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            # socketserver's default backlog of 5 drops connection bursts, and a dropped SYN
            # costs the client a one-second retransmission.
            request_queue_size = 256

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 20) -> list[Received]:
        """Wait until predicate(received) holds; return a copy of what arrived."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while not predicate(self.received):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out; received {[r.json for r in self.received]}")
                self._arrived.wait(remaining)
            return list(self.received)

    def events(self) -> list[dict]:
        with self._lock:
            return [request.json for request in self.received]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
