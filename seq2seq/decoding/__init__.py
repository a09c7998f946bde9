"""Search: the torch search and its numpy twin side by side (torch_search.py, numpy_search.py), each
with its constraints (torch_constraints.py, numpy_constraints.py), over one protocol of the searchable
model (protocol.py); the hypotheses and length batching both share (hypotheses.py).

Nothing here is imported by this package's __init__, so the numpy side loads without torch."""
