"""The HTTP routes of the Open Inference Protocol (KServe v2) as an ASGI application.

    app = make_app(model, max_batch=32, max_delay_ms=2)

    GET  /v2                          server metadata (name, version, extensions)
    GET  /v2/health/live, /v2/health/ready
    GET  /v2/models/{name}            model metadata: inputs and outputs (-1 on the batch axis)
    GET  /v2/models/{name}/ready
    GET  /v2/models/{name}/stats      counts, as Triton's statistics: inference_count (rows),
                                      execution_count (predict calls), and requests
    POST /v2/models/{name}/infer      JSON tensors in, JSON (or binary) tensors out

and the same under /v2/models/{name}/versions/1/... (the one version a served model has).

Every refusal is a 4xx with `{"error": "..."}` (404 unknown model or route, 405 wrong method,
400 a malformed or mismatched request, 413 a body over max_body_bytes); an exception from the
model is a 500 with its message.

Infer, the route taken by nearly every request, is a bare ASGI handler in front of Starlette
(no request or response objects, no middleware, no route matching), which saves much of the
server's own work per request. Every other route is a Starlette one.
"""
from __future__ import annotations

import contextlib

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .batcher import Batcher, ModelError
from .model import ServableModel
from .protocol import (HEADER_LENGTH, BadRequest, decode_infer, dumps, encode_infer,
                       model_metadata)

MAX_BODY_BYTES = 64 << 20
HEADER_LENGTH_BYTES = HEADER_LENGTH.encode()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_body(receive, declared: bytes | None, limit: int) -> bytes | None:
    """The request's body from ASGI receive (None if the client went away)."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"the body of {declared.decode()} bytes is over the limit of {limit}",
                         413)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"the body is over the limit of {limit} bytes", 413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _error_body(message: str) -> bytes:
    return dumps({"error": message})


def make_app(model: ServableModel, *, max_batch: int = 32, max_delay_ms: float = 0.0,
             max_body_bytes: int = MAX_BODY_BYTES):
    """The ASGI application serving one model; the batcher runs while its lifespan does."""
    from lepton import __version__
    batcher = Batcher(model, max_batch, max_delay_ms / 1000.0)
    plans: dict = {}        # binary requests' headers seen before (protocol.decode_infer)

    def find(request: Request) -> None:
        name = request.path_params["name"]
        if name != model.name:
            raise BadRequest(f"unknown model {name!r}; this server has {model.name!r}", 404)
        version = request.path_params.get("version", "1")
        if version != "1":
            raise BadRequest(f"model {name!r} has no version {version!r}; it has '1'", 404)

    async def server_metadata(request):
        return JSONResponse({"name": "lepton", "version": __version__,
                             "extensions": ["binary_tensor_data"]})

    async def ok(request):
        return JSONResponse({"live": True} if request.url.path.endswith("live")
                            else {"ready": True})

    async def metadata(request):
        find(request)
        return JSONResponse(model_metadata(model))

    async def model_ready(request):
        find(request)
        return JSONResponse({"name": model.name, "ready": True})

    async def stats(request):
        find(request)
        s = batcher.stats
        return JSONResponse({"model_stats": [{
            "name": model.name, "version": "1", "inference_count": s["rows"],
            "execution_count": s["predict_calls"], "request_count": s["requests"],
            "largest_batch": s["largest_batch"]}]})

    async def infer(scope, receive, send) -> None:
        """POST .../infer as a bare ASGI handler: the one route taken per request, so it skips
        the framework's request and response objects and middleware."""
        declared = header_length = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                declared = value
            elif key == HEADER_LENGTH_BYTES:
                header_length = value.decode("latin-1")
        status, headers = 200, None
        try:
            body = await _read_body(receive, declared, max_body_bytes)
            if body is None:
                return
            req = decode_infer(body, header_length, model, plans)
            results = await batcher.infer(req.arrays, req.rows)
            content, headers = encode_infer(model, req, results)
        except BadRequest as e:
            status, content = e.status, _error_body(str(e))
        except ModelError as e:
            status, content = 500, _error_body(f"model {model.name!r} failed: {e}")
        except Exception as e:  # noqa: BLE001  the server's own failure, answered as a 500
            status, content = 500, _error_body(f"{type(e).__name__}: {e}")
        raw = [(b"content-length", b"%d" % len(content))]
        for key, value in (headers or {"content-type": "application/json"}).items():
            raw.append((key.encode("latin-1"), value.encode("latin-1")))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": content})

    async def infer_elsewhere(request):
        find(request)       # another model's or version's path: a 404 naming it
        raise BadRequest("unreachable", 500)

    async def bad_request(request, exc: BadRequest):
        return _error(exc.status, str(exc))

    async def http_error(request, exc: HTTPException):
        return _error(exc.status_code, exc.detail)

    async def server_error(request, exc: Exception):
        return _error(500, f"{type(exc).__name__}: {exc}")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    paths = ("/v2/models/{name}", "/v2/models/{name}/versions/{version}")
    routes = [Route("/v2", server_metadata),
               Route("/v2/health/live", ok), Route("/v2/health/ready", ok)]
    for p in paths:
        routes += [Route(p, metadata), Route(p + "/ready", model_ready), Route(p + "/stats", stats),
                   Route(p + "/infer", infer_elsewhere, methods=["POST"])]
    framework = Starlette(routes=routes, lifespan=lifespan,
                          exception_handlers={BadRequest: bad_request, HTTPException: http_error,
                                              Exception: server_error})
    framework.state.batcher = batcher
    infer_paths = {f"/v2/models/{model.name}/infer", f"/v2/models/{model.name}/versions/1/infer"}

    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in infer_paths:
            await infer(scope, receive, send)
        else:
            await framework(scope, receive, send)
    app.state = framework.state
    return app
