"""seq2seq-average: average the weights of checkpoints of one run into a new model directory."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from seq2seq.cli.common import EXIT_OK, EXIT_USAGE, fail, setup_logging

log = logging.getLogger("seq2seq")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="seq2seq-average",
        description="Average the weights of checkpoints of one run into a new model directory. "
        "Give the directories, or --run-dir with --last N to take the newest N of RUN_DIR/checkpoints "
        "(kept when the recipe sets train.keep_checkpoints).",
    )
    parser.add_argument("model_dirs", nargs="*", help="model directories of one run")
    parser.add_argument("--run-dir", help="a run directory whose checkpoints/ to average")
    parser.add_argument("--last", type=int, default=5, help="with --run-dir: how many of the newest checkpoints")
    parser.add_argument("--output", required=True, help="the new model directory")
    args = parser.parse_args(argv)
    setup_logging()
    if bool(args.model_dirs) == bool(args.run_dir):
        parser.error("give either model directories or --run-dir, not both or neither")
    from seq2seq.modeldir.meta import CheckpointError
    from seq2seq.training.averaging import CHECKPOINTS, average_model_dirs, kept_checkpoints

    if args.run_dir:
        found = kept_checkpoints(Path(args.run_dir))
        if len(found) < args.last:
            return fail(
                f"{args.run_dir}/{CHECKPOINTS} holds {len(found)} checkpoints, fewer than --last {args.last}; "
                "train with train.keep_checkpoints=N (N >= --last)",
                EXIT_USAGE,
            )
        dirs = found[-args.last :]
    else:
        dirs = [Path(d) for d in args.model_dirs]
    try:
        average_model_dirs(dirs, Path(args.output))
    except CheckpointError as err:
        return fail(str(err), EXIT_USAGE)
    log.info("averaged %d checkpoints (%s) into %s", len(dirs), ", ".join(d.name for d in dirs), args.output)
    return EXIT_OK
