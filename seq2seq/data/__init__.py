"""Training data: corpora through Hugging Face datasets, the generated demo corpus, token-bucketed batches."""
