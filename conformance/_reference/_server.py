"""Run the reference app with uvicorn on a loopback port in a background thread.

The suite needs a real HTTP server (real framing, real headers) but no
external process: a thread-hosted uvicorn starts in milliseconds and dies
with the test session.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from ._app import ReferenceSettings, create_app
from ._store import ReferenceKeys

__all__ = ["EmbeddedServer"]

_START_TIMEOUT_S = 5.0
_STOP_TIMEOUT_S = 5.0


class EmbeddedServer:
    """Context manager owning one uvicorn server thread serving the reference app."""

    def __init__(
        self,
        settings: ReferenceSettings | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.settings = settings if settings is not None else ReferenceSettings()
        self.host = host
        self.app = create_app(self.settings)
        self._requested_port = port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self._closed = False

    @property
    def keys(self) -> ReferenceKeys:
        return self.settings.keys

    @property
    def faults(self) -> set[str]:
        """The live fault set: mutations take effect on the next request."""
        return self.settings.faults

    @property
    def base_url(self) -> str:
        if self.port == 0:
            raise RuntimeError("EmbeddedServer is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v2"

    def start(self) -> EmbeddedServer:
        """Bind first (so port 0 resolves before uvicorn runs), then serve in a thread."""
        if self._thread is not None:
            raise RuntimeError("EmbeddedServer already started")
        if self._closed:
            raise RuntimeError("a stopped EmbeddedServer cannot restart; create a new one")
        self._socket = self._bind()
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"creatoraudit-reference-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._wait_started()
        return self

    def _bind(self) -> socket.socket:
        """Listening socket; IPPROTO_TCP explicitly, because asyncio only enables
        TCP_NODELAY on sockets whose proto says TCP (proto 0 costs ~40 ms/request
        through Nagle + delayed ACK)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._requested_port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        return sock

    def _wait_started(self) -> None:
        """Block until uvicorn reports it is serving, or fail loudly."""
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("reference server failed to start")
            time.sleep(0.002)

    def stop(self) -> None:
        """Ask uvicorn to exit, join its thread, release the socket and the database."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT_S)
        if self._socket is not None:
            self._socket.close()
        if not self._closed:
            self.app.state.api.store.close()
            self._closed = True
        self._server = self._thread = self._socket = None
        self.port = 0

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
