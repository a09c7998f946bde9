"""seq2seq-upload MODEL_DIR ORG/NAME: publish a model directory on the Hugging Face Hub (seq2seq.modeldir.hub)."""

from __future__ import annotations

import argparse

from seq2seq.cli.common import EXIT_OK, EXIT_USAGE, fail, setup_logging
from seq2seq.modeldir.hub import HubError, upload_model_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="seq2seq-upload",
        description="Publish a model directory on the Hugging Face Hub as a model repository (created if need be). "
        "The token comes from `hf auth login` or HF_TOKEN; the resume state (training_state.pt) is left out.",
        epilog="Then: seq2seq-translate --model ORG/NAME [--revision R], or Translator.from_pretrained('ORG/NAME').",
    )
    parser.add_argument("model_dir", help="a model directory written by seq2seq-train, e.g. runs/en-de/best")
    parser.add_argument("repo_id", help="the Hub repository, ORG/NAME")
    parser.add_argument("--revision", help="the branch to upload to (created if need be; default main)")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--message", help="the commit message")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        url = upload_model_dir(args.model_dir, args.repo_id, revision=args.revision, private=args.private, message=args.message)
    except HubError as err:
        return fail(str(err), EXIT_USAGE)
    print(url)
    return EXIT_OK
