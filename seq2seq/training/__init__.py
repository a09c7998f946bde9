"""Training: the loop (loop.py, read top to bottom), what a run needs before its first step (setup.py), the
loop's own types (run.py), its bookkeeping (clock.py, progress.py, the learning rate in schedules.py),
validation, resume, reporting, distributed groups, checkpoint averaging, the loss."""
