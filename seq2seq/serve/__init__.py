"""seq2seq-serve: the HTTP layer over a `Translator` (pip install 'seq2seq[serve]').

batcher.py: the queue and the one inference worker (no web framework); inputs.py: request
bodies → typed, checked values; app.py: the FastAPI application; cli.py: the command.
Nothing on the translation path imports this package.
"""
