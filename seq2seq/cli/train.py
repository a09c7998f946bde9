"""seq2seq-train RECIPE.yaml [key=value ...]: train as the recipe says (seq2seq.training.loop)."""

from __future__ import annotations

import argparse
import logging
import sys

from seq2seq.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, fail, setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seq2seq-train", description="Train a translation model from a YAML recipe.")
    parser.add_argument("recipe", help="a YAML recipe, e.g. recipes/demo.yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. train.lr=5e-4 data.dir=../shared/data/multi30k")
    parser.add_argument("--print-config", action="store_true", help="print the resolved recipe and exit")
    args = parser.parse_args(argv)

    from seq2seq.config import ConfigError, dump_yaml, load_config

    try:
        config = load_config(args.recipe, args.overrides)
    except ConfigError as err:
        return fail(str(err), EXIT_USAGE)
    if args.print_config:
        sys.stdout.write(dump_yaml(config))
        return EXIT_OK
    allocator = None
    if argv is None:  # the command itself, not main() called from Python: it may execute itself again
        from seq2seq.training.allocator import run_with_tcmalloc

        try:
            allocator = run_with_tcmalloc(config.train.device)
        except ValueError as err:
            return fail(str(err), EXIT_USAGE)
    setup_logging()
    if allocator:
        logging.getLogger("seq2seq").info(allocator)
    from seq2seq.data.corpus import DataError
    from seq2seq.training.loop import train
    from seq2seq.training.resume import ResumeError, TrainingInterrupted

    try:
        train(config)
    except (DataError, ConfigError, ResumeError) as err:
        return fail(str(err), EXIT_USAGE)
    except TrainingInterrupted as err:
        print(str(err), file=sys.stderr)
        return err.exit_code
    except (OSError, FloatingPointError, MemoryError) as err:
        return fail(str(err), EXIT_FAILURE)
    return EXIT_OK
