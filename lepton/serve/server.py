"""Running the server: uvicorn on a host and port, graceful shutdown on SIGTERM.

    serve(model, host="127.0.0.1", port=8000, max_batch=32, max_delay_ms=2)

Before listening it calls predict once per batch size class it can meet (1, 2, 4, ... up to
max_batch), so no request waits for a compilation. When it listens it prints one line,
`lepton serve: model NAME at http://HOST:PORT/v2/models/NAME` (port 0 picks a free port and
the line names it). SIGTERM or Ctrl+C stops accepting connections, lets the requests in flight
finish, and then serve returns (the process exits with status 0).
"""
from __future__ import annotations

import asyncio
import signal
import socket
import sys
import threading

from .model import ServableModel


def warm_up(model: ServableModel, max_batch: int) -> None:
    """One predict per power-of-two batch size up to max_batch (and max_batch itself); none
    for a model with a free dimension that is not its batch axis (an ONNX model's symbolic
    dimension), which zeros could not fill."""
    if any(d == -1 and k != t.batch_axis for t in model.inputs for k, d in enumerate(t.shape)):
        return
    sizes = {1}
    if model.batchable:
        sizes |= {1 << k for k in range(max_batch.bit_length()) if 1 << k <= max_batch}
        sizes.add(max_batch)
    for rows in sorted(sizes):
        model.predict(*model.zeros(rows))


def serve(model: ServableModel, *, host: str = "127.0.0.1", port: int = 8000,
          max_batch: int = 32, max_delay_ms: float = 0.0, sock: socket.socket | None = None,
          log_level: str = "warning", loop: str = "auto", out=None) -> None:
    """Serves model until SIGTERM or SIGINT (see the module docstring); with sock, serves on
    that bound socket instead of host and port. loop is uvicorn's: "auto" takes uvloop when it
    is installed, else asyncio's."""
    import uvicorn
    from .app import make_app
    out = out or sys.stdout
    warm_up(model, max_batch)
    app = make_app(model, max_batch=max_batch, max_delay_ms=max_delay_ms)
    if sock is None:
        # IPPROTO_TCP, so asyncio sets TCP_NODELAY on each connection: with a bare socket()
        # (proto 0) it does not, and Nagle with delayed ACKs adds ~40 ms to every response
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                             socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    bound = sock.getsockname()
    config = uvicorn.Config(app, log_level=log_level, lifespan="on", access_log=False, loop=loop,
                            proxy_headers=False)    # no proxy's headers to trust per request
    server = uvicorn.Server(config)

    async def main():
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started:
            print(f"lepton serve: model {model.name} at http://{bound[0]}:{bound[1]}"
                  f"/v2/models/{model.name}", file=out, flush=True)
        await task

    # uvicorn re-raises the signal that stopped it once it is done; with these handlers that
    # ends serve() normally instead of killing the process with the signal's status.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGTERM, signal.SIGINT)} \
        if main_thread else {}
    factory = config.get_loop_factory() if hasattr(config, "get_loop_factory") else None
    try:
        if factory is not None and sys.version_info >= (3, 11):
            with asyncio.Runner(loop_factory=factory) as runner:    # uvloop's, if chosen
                runner.run(main())
        else:
            asyncio.run(main())
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sock.close()
