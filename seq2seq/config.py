"""Recipes: YAML files loaded into typed, frozen dataclasses.

Every value is parsed by the type its field declares (`lr: 1e-3` is a float), dotted `key=value`
overrides are applied on top, and every problem in a recipe is reported at once in one
`ConfigError` that names each key, so a user fixes a recipe in one pass rather than one error at
a time.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

Attention = Literal["bahdanau", "luong", "none"]
Scheduler = Literal["plateau", "warmup_decay", "linear", "constant"]
Device = Literal["auto", "cpu", "cuda"]
SpmModelType = Literal["unigram", "bpe", "char", "word"]
OutputVocab = Literal["full", "target"]
Cell = Literal["lstm", "gru"]


class ConfigError(ValueError):
    """A recipe or an override is wrong; the message lists every problem, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid recipe:\n" + "\n".join(f"  - {p}" for p in problems))


def _num(default: Any, lo: float | None = None, hi: float | None = None, *, open_lo: bool = False) -> Any:
    """A numeric field with an allowed range, checked by `load_config`."""
    return field(default=default, metadata={"lo": lo, "hi": hi, "open_lo": open_lo})


@dataclass(frozen=True)
class DataConfig:
    """Where the parallel corpus comes from and which sentences are kept.

    Exactly one source is used, the first that is set of: `demo` (generated here), `train`
    (local files), `dir` (a `{split}.{lang}[.gz]` directory) and `hub` (a Hugging Face dataset).
    Local data thus wins over the recipe's hub name with a single override.
    """

    src_lang: str = "en"
    tgt_lang: str = "de"
    demo: bool = False
    demo_train_size: int = _num(20000, 100)
    hub: str | None = None
    hub_config: str | None = None
    dir: str | None = None
    # Local files per split: [src, tgt] (plain text or .gz, one sentence per line), or one .tsv/.jsonl.
    train: tuple[str, ...] | None = None
    valid: tuple[str, ...] | None = None
    test: tuple[str, ...] | None = None
    train_split: str = "train"
    valid_split: str = "validation"
    test_split: str = "test"
    max_len: int = _num(100, 1)
    max_valid_sentences: int = _num(0, 0)
    # Extra training pairs, as a share of the corpus, each two random pairs joined into one (the first
    # without its final full stop half the time): the model then translates both sentences of text
    # the sentence splitter cannot cut, such as a caption without a full stop before another.
    join_pairs: float = _num(0.0, 0.0, 1.0)
    # Read the training split as a stream (corpora larger than memory): pairs are shuffled,
    # tokenized and batched `stream_buffer` at a time; SentencePiece trains on the first
    # `tokenizer_sample` pairs.
    streaming: bool = False
    stream_buffer: int = _num(100000, 1)
    tokenizer_sample: int = _num(1000000, 1)


@dataclass(frozen=True)
class TokenizerConfig:
    vocab_size: int = _num(8000, 16)
    model_type: SpmModelType = "unigram"
    character_coverage: float = _num(1.0, 0.9, 1.0)
    byte_fallback: bool = False
    joint: bool = True
    # SentencePiece subword sampling during training (unigram only); 0 turns it off.
    sample_alpha: float = _num(0.0, 0.0, 1.0)
    # A run or model directory whose SentencePiece model(s) this run encodes with instead of
    # training its own (vocab_size, model_type, character_coverage and byte_fallback then come
    # from them): models trained on new data, distilled data for one, stay ensemble-compatible.
    reuse: str | None = None


@dataclass(frozen=True)
class ModelConfig:
    # The recurrent cell of encoder and decoder alike. gru: no cell state, three gates instead of
    # four, so about 3/4 of the recurrent weights and work.
    cell: Cell = "lstm"
    emb_dim: int = _num(256, 1)
    enc_hidden: int = _num(256, 1)
    enc_layers: int = _num(1, 1)
    dec_hidden: int = _num(512, 1)
    dec_layers: int = _num(1, 1)
    attention: Attention = "bahdanau"
    attention_dim: int = _num(256, 1)
    input_feeding: bool = True
    dropout: float = _num(0.3, 0.0, 0.9)
    emb_dropout: float = _num(0.3, 0.0, 0.9)
    word_dropout: float = _num(0.0, 0.0, 0.9)
    tie_embeddings: bool = True
    # target: the output layer scores only the pieces that the training targets can hold (a
    # smaller softmax, faster training); full: every piece of the target vocabulary.
    output_vocab: OutputVocab = "full"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = _num(20, 1)
    max_steps: int = _num(0, 0)
    max_minutes: float = _num(0.0, 0.0)  # wall-clock budget for training, validation included; 0: none
    batch_tokens: int = _num(3400, 1)
    lr: float = _num(1e-3, 0.0, open_lo=True)
    weight_decay: float = _num(0.0, 0.0)
    scheduler: Scheduler = "plateau"
    warmup_steps: int = _num(0, 0)
    plateau_factor: float = _num(0.5, 0.0, 1.0, open_lo=True)
    plateau_patience: int = _num(1, 0)
    min_lr: float = _num(1e-5, 0.0)
    clip_norm: float = _num(5.0, 0.0)
    label_smoothing: float = _num(0.1, 0.0, 0.99)
    teacher_forcing: float = _num(1.0, 0.0, 1.0)
    eval_every: int = _num(0, 0)  # steps between validations; 0: once per epoch
    save_every: int = _num(0, 0)  # steps between resume checkpoints besides those at validation; 0: none
    keep_checkpoints: int = _num(0, 0)  # model directories of the last N validations, for seq2seq-average; 0: none
    log_every: int = _num(50, 1)
    patience: int = _num(5, 0)
    valid_beam_size: int = _num(1, 1)
    score_test: bool = True  # score the best model on the test split (beam 5) when training ends, if there is one
    device: Device = "auto"
    # bf16 autocast. auto: on where the hardware has bf16 units (a GPU from Ampere on, a CPU with AVX-512 BF16 or AMX),
    # off elsewhere; true where the CPU has none is an error. Default false: numbers the same on every machine.
    bf16: Literal["auto"] | bool = False
    threads: int = _num(0, 0)
    # Under torchrun: how long a rank waits for the others in one collective before the run fails
    # with an error naming the ranks that did not answer (a dead or stuck peer); above the longest
    # validation, which the other ranks wait out.
    dist_timeout_minutes: float = _num(10.0, 0.0, open_lo=True)
    max_skipped_steps: int = _num(5, 1)  # steps in a row without an update (non-finite, out of memory) before the run stops
    tensorboard: bool = False
    # Fine-tuning: a model directory whose weights a new run starts from. Its tokenizer and model
    # section are reused (the recipe's must match them, dropout aside); optimizer and schedule start fresh.
    init_from: str | None = None


@dataclass(frozen=True)
class Config:
    run_dir: str = "runs/default"
    seed: int = 1
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a recipe (YAML) and apply `key=value` overrides; raise one ConfigError listing all problems."""
    problems: list[str] = []
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError([f"cannot read recipe {path}: {err.strerror}"]) from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError([f"{path} is not valid YAML: {err}"]) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError([f"{path} must hold a mapping of keys, not a {type(loaded).__name__}"])
        raw = loaded
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            problems.append(f"override {item!r} must look like key=value, e.g. train.lr=5e-4")
            continue
        _set_dotted(raw, key.strip(), _parse_override_value(value), problems)
    config = _build(Config, raw, "", problems)
    if not problems and config.train.scheduler == "linear" and config.data.streaming and not (config.train.max_minutes or config.train.max_steps):
        problems.append("train.scheduler=linear decays over the run, but a streamed corpus has no known epoch length: set train.max_minutes or train.max_steps")
    if not problems and config.model.output_vocab == "target" and config.data.streaming:
        problems.append(
            "model.output_vocab=target reads every training target before training, which a streamed corpus "
            "never holds: set model.output_vocab=full or data.streaming=false"
        )
    if not problems and config.data.join_pairs > 0 and config.data.streaming:
        problems.append("data.join_pairs joins pairs of the corpus in memory, which a streamed corpus is not: set data.join_pairs=0 or data.streaming=false")
    if problems:
        raise ConfigError(problems)
    return config


def config_to_dict(config: Config) -> dict[str, Any]:
    """A plain, JSON-ready dict of the resolved recipe (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a Config from `config_to_dict` output, e.g. a model directory's config.json."""
    problems: list[str] = []
    config = _build(Config, data, "", problems)
    if problems:
        raise ConfigError(problems)
    return config


def dump_yaml(config: Config) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False, allow_unicode=True)


def _parse_override_value(value: str) -> Any:
    """YAML rules for an override's value (`1e-3`, `true`, `[a, b]`, `null`), the raw text otherwise."""
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def _set_dotted(raw: dict[str, Any], key: str, value: Any, problems: list[str]) -> None:
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            problems.append(f"override {key}: {'.'.join(parts[: i + 1])} is not a section")
            return
        node = child
    node[parts[-1]] = value


def _build(cls: type, raw: Any, prefix: str, problems: list[str]) -> Any:
    """Instantiate dataclass `cls` from a mapping, appending a message per bad key to `problems`."""
    if not isinstance(raw, dict):
        problems.append(f"{prefix.rstrip('.') or 'recipe'} must be a mapping, got {raw!r}")
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean {prefix}{close[0]}?" if close else f"; valid keys: {', '.join(fields)}"
            problems.append(f"unknown key {prefix}{key}{hint}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in raw:
            continue
        key = prefix + name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            values[name] = _build(tp, raw[name], key + ".", problems)
            continue
        ok, value = _coerce(raw[name], tp)
        if not ok:
            problems.append(f"{key}: expected {_type_name(tp)}, got {raw[name]!r}")
            continue
        error = _check_range(value, f.metadata)
        if error:
            problems.append(f"{key}: {error}, got {value!r}")
            continue
        values[name] = value
    return cls(**values)


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """Parse `value` as type `tp`; (False, None) when it does not fit."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return True, None
        for arg in typing.get_args(tp):
            if arg is not type(None):
                ok, out = _coerce(value, arg)
                if ok:
                    return True, out
        return False, None
    if origin is Literal:
        return (value in typing.get_args(tp)), value
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            return False, None
        item_tp = typing.get_args(tp)[0]
        items = [_coerce(v, item_tp) for v in value]
        return all(ok for ok, _ in items), tuple(v for _, v in items)
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return (isinstance(value, int) and not isinstance(value, bool)), value
    if tp is float:
        if isinstance(value, str):
            try:
                return True, float(value)  # YAML 1.1 reads `1e-3` (no dot) as a string
            except ValueError:
                return False, None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False, None
        return True, float(value)
    if tp is str:
        return isinstance(value, str), value
    raise AssertionError(f"unhandled config type {tp}")


def _check_range(value: Any, meta: Any) -> str | None:
    lo, hi = meta.get("lo"), meta.get("hi")
    if value is None or (lo is None and hi is None):
        return None
    if lo is not None and (value <= lo if meta.get("open_lo") else value < lo):
        return f"must be {'>' if meta.get('open_lo') else '>='} {lo}"
    if hi is not None and value > hi:
        return f"must be <= {hi}"
    return None


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if tp is type(None):
        return "null"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))
