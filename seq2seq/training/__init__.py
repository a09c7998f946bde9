"""Training: the loop (loop.py, read top to bottom), what a run needs before its first step (setup.py),
validation, schedules, resume, reporting, distributed groups, checkpoint averaging, the loss."""
