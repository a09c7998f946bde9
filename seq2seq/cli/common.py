"""What every command shares: the conventions, the logging, and the argument groups.

stdout carries only results; logs, warnings and progress go to stderr. Exit codes: 0 success,
2 a usage, recipe, data or model-directory error (a message, no traceback), 1 anything else;
seq2seq-train stopped by SIGINT or SIGTERM saves its state and exits with 128 + the signal
number (130, 143): running the same command again resumes.

The search flags are derived from `SearchOptions`' fields (name, type, default, help), as the
server's request model is: a decoding option added there reaches every command with no edit here.
Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import fields

from seq2seq.options import BATCH_SIZE, PRECISIONS, SearchOptions, check_batch_size

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
DEFAULTS = SearchOptions()
MODEL_HELP = "a model directory written by seq2seq-train or seq2seq-export, or a model on the Hugging Face Hub (ORG/NAME); several: an ensemble"


def setup_logging(quiet: bool = False) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)


def fail(message: str, code: int) -> int:
    """Print `error: message` on stderr and return the exit code: a user's mistake gets no traceback."""
    print(f"error: {message}", file=sys.stderr)
    return code


def add_model_arguments(parser: argparse.ArgumentParser, *, model_help: str = MODEL_HELP) -> None:
    """--model, --revision, --device, --precision, --threads, --no-shortlist: how the commands that translate load a model."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", required=True, nargs="+", help=model_help)
    group.add_argument("--revision", help="for a model on the Hub: the branch, tag or commit (default main)")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    group.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="bf16: bfloat16 weights and activations, for GPUs and CPUs with bf16 instructions (whether it is faster "
        "depends on the hardware: measure it, docs/guides/decoding.md#precision); int8: dynamic quantization, CPU only",
    )
    group.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads (0: torch's default; for an exported directory every CPU, and it searches up to that many batches at once, one thread each)",
    )
    group.add_argument(
        "--no-shortlist",
        dest="shortlist",
        action="store_false",
        help="an exported model with a vocabulary shortlist (seq2seq-export --shortlist) scores the whole vocabulary instead",
    )


def add_search_arguments(parser: argparse.ArgumentParser, *, exclude: tuple[str, ...] = ()) -> None:
    """--batch-size and one flag per `SearchOptions` field (but `exclude`): --beam-size, --no-early-stop,
    --sample for mode, …; each flag's type, default and help are the field's."""
    group = parser.add_argument_group("search", "decoding options (docs/guides/decoding.md has a section on each)")
    group.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="sentences per batch")
    for f in fields(SearchOptions):
        if f.name in exclude:
            continue
        help_ = f.metadata["help"] + (" (with --sample)" if f.metadata.get("only") == "sample" else "")
        if f.name == "mode":
            group.add_argument("--sample", action="store_true", help="sample instead of searching (see the sampling flags)")
        elif f.type == "bool":  # a flag that turns the default around: --ban-unk, --no-early-stop
            group.add_argument(
                _flag(f.name, negate=f.default),
                dest=f.name,
                action="store_false" if f.default else "store_true",
                help=f.metadata.get("help_off", help_) if f.default else help_,
            )
        else:
            group.add_argument(_flag(f.name), type=int if f.type == "int" else float, default=f.default, help=help_)


def search_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> SearchOptions:
    """The SearchOptions the flags describe; an invalid value, or a sampling flag without --sample, is a
    usage error naming its flag (invalid values first)."""
    values = {f.name: getattr(args, f.name) for f in fields(SearchOptions) if f.name != "mode" and hasattr(args, f.name)}
    values["mode"] = "sample" if getattr(args, "sample", False) else "beam"
    try:
        check_batch_size(args.batch_size)
        options = SearchOptions(**values)
    except ValueError as err:
        message = str(err)
        for name in ["batch_size", *(f.name for f in fields(SearchOptions))]:
            message = message.replace(name, _flag(name))
        parser.error(message)
    if options.mode != "sample":
        sampling_only = [_flag(f.name) for f in fields(SearchOptions) if f.metadata.get("only") == "sample" and getattr(options, f.name) != f.default]
        if sampling_only:
            one = len(sampling_only) == 1
            parser.error(
                f"{', '.join(sampling_only)} {'applies' if one else 'apply'} to sampling only: "
                f"add --sample, or leave {'it' if one else 'them'} out for beam search"
            )
    return options


def _flag(name: str, negate: bool = False) -> str:
    return ("--no-" if negate else "--") + name.replace("_", "-")
