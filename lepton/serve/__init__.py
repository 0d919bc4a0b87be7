"""A prediction server speaking the Open Inference Protocol (KServe v2), with dynamic batching.

    lepton serve model.lepton --port 8000 --max-batch 32 --max-delay-ms 2

or from Python, for any function of arrays:

    from lepton.serve import from_function, serve
    serve(from_function(lp.compile(f), (x,), name="mlp", batch_axis=0), port=8000, max_batch=32)

Needs the [serve] extra (starlette and uvicorn), imported only when a server starts.
model.py is the interface the server needs from a model, protocol.py the message formats,
batcher.py the dynamic batcher, app.py the routes, server.py uvicorn and shutdown.
"""
from .model import ServableModel, TensorSpec, from_function, from_loaded
from .server import serve, warm_up

__all__ = ["ServableModel", "TensorSpec", "from_function", "from_loaded", "serve", "warm_up"]
