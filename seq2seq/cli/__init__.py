"""The commands, one module each (seq2seq-train → cli/train.py, …), and common.py: their conventions
(stderr, exit codes, logging) and the argument groups they share."""
