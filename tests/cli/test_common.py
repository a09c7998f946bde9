"""The flags every command shares (seq2seq/cli/common.py): one search flag per SearchOptions field,
derived from the field, so an option added there reaches the commands with no edit."""

import argparse
import dataclasses

import pytest

from seq2seq.cli.common import add_model_arguments, add_search_arguments, search_options
from seq2seq.options import SearchOptions

FIELDS = dataclasses.fields(SearchOptions)


def parser_with_search_flags(**kwargs) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="test", exit_on_error=False)
    add_search_arguments(parser, **kwargs)
    return parser


def off_default(field: dataclasses.Field) -> tuple[list[str], object]:
    """The flags that set `field` off its default, and the value they should give it."""
    flag = "--" + field.name.replace("_", "-")
    sample = ["--sample"] if field.metadata.get("only") == "sample" else []
    if field.name == "mode":
        return ["--sample"], "sample"
    if field.type == "bool":
        return (["--no-" + field.name.replace("_", "-")] if field.default else [flag]), not field.default
    value = field.default + 1 if field.type == "int" else (field.default / 2 if field.default > 0 else 0.5)
    return [*sample, flag, str(value)], value


@pytest.mark.parametrize("field", FIELDS, ids=[f.name for f in FIELDS])
def test_each_search_option_has_a_flag_that_sets_it(field):
    parser = parser_with_search_flags()
    argv, value = off_default(field)
    options = search_options(parser, parser.parse_args(argv))
    assert getattr(options, field.name) == value
    assert options == SearchOptions(**{field.name: value, **({"mode": "sample"} if "--sample" in argv else {})})


def test_no_flags_give_the_defaults_and_excluded_fields_have_no_flag():
    parser = parser_with_search_flags()
    assert search_options(parser, parser.parse_args([])) == SearchOptions()
    with pytest.raises(SystemExit):
        parser_with_search_flags(exclude=("nbest",)).parse_args(["--nbest", "2"])


def test_invalid_values_name_the_flag(capsys):
    parser = parser_with_search_flags()
    for argv, message in [
        (["--repetition-penalty", "0"], "--repetition-penalty must be a number > 0"),
        (["--nbest", "6"], "--nbest (6) cannot exceed --beam-size (5)"),
        (["--batch-size", "0"], "--batch-size must be an integer >= 1"),
        (["--temperature", "0.5"], "--temperature applies to sampling only: add --sample"),
    ]:
        with pytest.raises(SystemExit):
            search_options(parser, parser.parse_args(argv))
        assert message in capsys.readouterr().err, argv


def test_model_flags():
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    args = parser.parse_args(["--model", "a", "b", "--revision", "v1", "--precision", "int8", "--threads", "2"])
    assert (args.model, args.revision, args.device, args.precision, args.threads) == (["a", "b"], "v1", "auto", "int8", 2)
