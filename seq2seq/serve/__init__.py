"""seq2seq-serve: the HTTP layer over a `Translator` (pip install 'seq2seq[serve]').

app.py: create_app, which only wires (state, lifespan, error shape, access log, routers);
routes.py: the endpoints, on an APIRouter; dependencies.py: the shared state, the API-key check
and a request's fields, as FastAPI dependencies; inputs.py: request bodies → typed, checked
values; batcher.py: the queue and the one inference worker (no web framework); metrics.py: the
Prometheus metrics. The command is seq2seq/cli/serve.py.
Nothing on the translation path imports this package.
"""
