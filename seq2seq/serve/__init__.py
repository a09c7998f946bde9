"""seq2seq-serve: the HTTP layer over a `Translator` (pip install 'seq2seq[serve]').

app.py: create_app, which only wires (state, lifespan, error shape, access log, CORS, routes, the
OpenAPI document and /docs); routes.py: the endpoints, on an APIRouter; file_routes.py:
/translate_file and /download_file; dependencies.py: the shared state and the API-key check as
FastAPI dependencies, the request limit, and a body route's fields (read_request); inputs.py: request bodies → typed,
checked values; detection.py: /detect and source auto; limits.py: the per-minute request limit;
downloads.py: the translated files' store; openapi.py: the contract's schemas and the docs page;
batcher.py: the queue and its inference workers (no web framework); processes.py: workers in
processes of their own, each with its model; metrics.py: the Prometheus metrics. The command is seq2seq/cli/serve.py.
Nothing on the translation path imports this package.
"""
