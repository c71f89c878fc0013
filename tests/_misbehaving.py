"""A deliberately broken HTTP server: each misbehaviour a real target might show, on command.

The first path segment picks the misbehaviour, so one server serves them all:
``http://127.0.0.1:PORT/<mode>`` is the base URL of a target that always does ``<mode>``.
``GET <base>/health`` answers normally, so the CLI's reachability probe passes and the
misbehaviour hits the suite's own requests. Raw sockets on purpose: no framework would let a
handler send a wrong Content-Length, trickle bytes or reset a connection.
"""

from __future__ import annotations

import json
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from types import TracebackType

HUGE_BODY_BYTES = 50 * 1024 * 1024
CHUNK = b"x" * 65536
HEALTH = b'{"status":"ok"}'


class _Handler(socketserver.BaseRequestHandler):
    """Echoes X-Request-ID like a conforming server, so only the misbehaviour is judged."""

    server: MisbehavingServer._TCPServer
    request_id = "minted-by-misbehaving-server"

    def _response_head(self, status: str, headers: dict[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status}", f"X-Request-ID: {self.request_id}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join([*lines, "Connection: close", "", ""])).encode("latin-1")

    def _answer(self, status: str, body: bytes, content_type: str = "application/json") -> bytes:
        head = self._response_head(
            status, {"Content-Type": content_type, "Content-Length": str(len(body))}
        )
        return head + body

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5)
        try:
            head = self._read_head(sock)
        except OSError:
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        path = request_line.split(" ")[1] if " " in request_line else "/"
        mode = path.strip("/").split("/")[0]
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "x-request-id":
                self.request_id = value.strip()
        self.server.owner.seen.append(request_line)
        if path.rstrip("/").endswith("/health"):
            sock.sendall(self._answer("200 OK", HEALTH))
            return
        action = MODES.get(mode)
        try:
            if action is None:
                sock.sendall(self._answer("404 Not Found", b"{}"))
            else:
                action(self, sock, path)
        except OSError:  # the suite hung up on us: that is the point
            pass

    @staticmethod
    def _read_head(sock: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data

    def _stopped(self, seconds: float) -> bool:
        return self.server.owner.stopping.wait(seconds)

    def never_answers(self, sock: socket.socket, path: str) -> None:
        self._stopped(60)

    def one_byte_per_second(self, sock: socket.socket, path: str) -> None:
        for byte in self._answer("201 Created", b'{"data": {"id": "slow"}}'):
            sock.sendall(bytes([byte]))
            if self._stopped(1.0):
                return

    def connection_reset(self, sock: socket.socket, path: str) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    def closes_mid_body(self, sock: socket.socket, path: str) -> None:
        head = self._response_head(
            "201 Created", {"Content-Type": "application/json", "Content-Length": "1000"}
        )
        sock.sendall(head + b'{"data": {"id": "')
        sock.shutdown(socket.SHUT_RDWR)

    def invalid_json(self, sock: socket.socket, path: str) -> None:
        sock.sendall(self._answer("201 Created", b'{"data": {"id": "x", }'))

    def content_type_mismatch(self, sock: socket.socket, path: str) -> None:
        sock.sendall(self._answer("201 Created", b"<html><body>created</body></html>"))

    def huge_body(self, sock: socket.socket, path: str) -> None:
        head = self._response_head(
            "201 Created",
            {"Content-Type": "application/json", "Content-Length": str(HUGE_BODY_BYTES)},
        )
        sock.sendall(head)
        for _ in range(HUGE_BODY_BYTES // len(CHUNK)):
            sock.sendall(CHUNK)
            self.server.owner.bytes_sent += len(CHUNK)

    def rate_limited_once(self, sock: socket.socket, path: str) -> None:
        """Every first request to a path is refused with 429 and Retry-After: 1; then 200."""
        reset = str(int(time.time()) + 1)
        limits = {"X-RateLimit-Limit": "10", "X-RateLimit-Reset": reset}
        hits = self.server.owner.hits
        hits[path] = hits.get(path, 0) + 1
        if hits[path] % 2:
            problem = {
                "type": "urn:creatoraudit:error:rate-limited",
                "title": "Too Many Requests",
                "status": 429,
                "detail": "Slow down.",
                "code": "RATE_LIMITED",
                "request_id": self.request_id,
            }
            body = json.dumps(problem).encode()
            headers = {"Content-Type": "application/problem+json", "Retry-After": "1"}
            headers |= {"X-RateLimit-Remaining": "0", "Content-Length": str(len(body))}
            sock.sendall(self._response_head("429 Too Many Requests", headers | limits) + body)
            return
        body = b'{"data": {"id": "fine"}}'
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        headers |= {"X-RateLimit-Remaining": "9"}
        headers |= {"ETag": '"fine"', "Cache-Control": "private, no-cache"}  # caching rules
        sock.sendall(self._response_head("200 OK", headers | limits) + body)

    def redirect_loop(self, sock: socket.socket, path: str) -> None:
        head = self._response_head(
            "307 Temporary Redirect", {"Location": path, "Content-Length": "0"}
        )
        sock.sendall(head)


MODES: dict[str, Callable[[_Handler, socket.socket, str], None]] = {
    "never-answers": _Handler.never_answers,
    "one-byte-per-second": _Handler.one_byte_per_second,
    "connection-reset": _Handler.connection_reset,
    "closes-mid-body": _Handler.closes_mid_body,
    "invalid-json": _Handler.invalid_json,
    "content-type-mismatch": _Handler.content_type_mismatch,
    "huge-body": _Handler.huge_body,
    "redirect-loop": _Handler.redirect_loop,
    "rate-limited-once": _Handler.rate_limited_once,
}


class MisbehavingServer:
    """Runs in a thread on a free loopback port; ``with MisbehavingServer() as s: s.url(mode)``."""

    class _TCPServer(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        owner: MisbehavingServer

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.seen: list[str] = []
        self.bytes_sent = 0
        self.hits: dict[str, int] = {}
        self._server = self._TCPServer(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, mode: str) -> str:
        if mode not in MODES:
            raise ValueError(f"unknown misbehaviour {mode!r}")
        return f"http://127.0.0.1:{self.port}/{mode}"

    def __enter__(self) -> MisbehavingServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
