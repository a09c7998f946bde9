"""Parallel corpora through Hugging Face `datasets`: sources, checks, and encoded, length-filtered splits.

A split is a `datasets.Dataset` with two string columns, `src` and `tgt`, whichever source it came
from: a hub dataset, local text pairs (plain or .gz), TSV, JSONL, a Multi30k-style directory, or
the generated demo corpus. Problems with the data stop the run before training, naming the files.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seq2seq.config import DataConfig
from seq2seq.data.batching import EncodedSplit, filter_by_length
from seq2seq.textfiles import open_text, read_lines, strip_line_end

if TYPE_CHECKING:
    import datasets  # imported where used: the translation path never loads it

SPLITS = ("train", "valid", "test")
# Names a split goes by in corpus directories, tried after the recipe's own name.
DIR_ALIASES = {
    "train": ("train",),
    "valid": ("val", "valid", "validation", "dev"),
    "test": ("test", "test_2016_flickr"),
}


class DataError(ValueError):
    """The corpus cannot be used as given; the message names the files and what to change."""


def load_corpus(data: DataConfig, work_dir: Path) -> dict[str, datasets.Dataset]:
    """Load the train, valid and (when present) test splits as Datasets with `src`/`tgt` columns.

    With data.streaming the train split is a `datasets.IterableDataset` read as it is used, so a
    corpus of any size trains in flat memory; the other splits are small and loaded whole.
    """
    if data.demo:
        from seq2seq.data.demo_corpus import write_demo_corpus

        demo_dir = write_demo_corpus(work_dir / "demo-data", seed=0, train_size=data.demo_train_size)
        return _load_dir(demo_dir, data, required=True)
    if data.train is not None:
        corpus = {"train": _stream_files(data.train, data) if data.streaming else _load_files(data.train, data)}
        for split, files in (("valid", data.valid), ("test", data.test)):
            if files is not None:
                corpus[split] = _load_files(files, data)
        if "valid" not in corpus:
            raise DataError("data.valid is not set: give validation files next to data.train, e.g. data.valid=[val.en,val.de]")
        return corpus
    if data.dir is not None:
        return _load_dir(Path(data.dir), data, required=True)
    if data.hub is not None:
        return _load_hub(data)
    raise DataError(
        "no corpus: set data.hub (a Hugging Face dataset), data.dir (a directory of {split}.{lang}.gz files) or data.train/data.valid (local files)"
    )


def describe_source(data: DataConfig) -> str:
    """The corpus a recipe uses, in words, for messages and model cards."""
    if data.demo:
        return "the generated demo corpus"
    if data.train is not None:
        return " + ".join(data.train)
    return data.dir or data.hub or "no corpus"


def _load_hub(data: DataConfig) -> dict[str, datasets.Dataset]:
    import datasets

    corpus = {}
    for split, name in (("train", data.train_split), ("valid", data.valid_split), ("test", data.test_split)):
        try:
            ds = datasets.load_dataset(data.hub, data.hub_config, split=name, streaming=data.streaming and split == "train")
        except ValueError as err:
            if split == "test" and "split" in str(err).lower():
                continue  # a corpus without a test split is fine for training
            raise DataError(f"dataset {data.hub!r}: {err}") from None
        except Exception as err:  # the hub client raises many types when it is unreachable
            raise DataError(
                f"could not load dataset {data.hub!r} split {name!r} from the Hugging Face hub "
                f"({type(err).__name__}: {err}). Without network access, point the recipe at local files "
                f"instead: data.dir=DIR (files {{split}}.{data.src_lang}.gz and {{split}}.{data.tgt_lang}.gz, "
                f"as in Multi30k), or data.train=[train.{data.src_lang},train.{data.tgt_lang}] "
                f"data.valid=[val.{data.src_lang},val.{data.tgt_lang}]"
            ) from None
        corpus[split] = _to_pairs(ds, data, f"{data.hub}:{name}")
    return corpus


def _to_pairs(ds: datasets.Dataset, data: DataConfig, where: str) -> datasets.Dataset:
    """Map a dataset's language columns (`en`/`de`, or a `translation` dict) onto `src`/`tgt`."""
    import datasets

    cols = ds.column_names or list(ds.features or {})
    src, tgt = data.src_lang, data.tgt_lang
    if src in cols and tgt in cols:
        ds = ds.select_columns([src, tgt]).rename_columns({src: "src", tgt: "tgt"})
    elif "translation" in cols:
        ds = ds.map(
            lambda batch: {"src": [t[src] for t in batch["translation"]], "tgt": [t[tgt] for t in batch["translation"]]},
            batched=True,
            remove_columns=cols,
        )
    else:
        raise DataError(
            f"{where}: found columns {cols}; expected {src!r} and {tgt!r}, or a 'translation' column of dicts. Set data.src_lang/data.tgt_lang to the column names."
        )
    if isinstance(ds, datasets.Dataset) and len(ds) == 0:
        raise DataError(f"{where} is empty")
    return ds


def _load_dir(directory: Path, data: DataConfig, required: bool) -> dict[str, datasets.Dataset]:
    if not directory.is_dir():
        raise DataError(f"data.dir: {directory} is not a directory")
    corpus = {}
    for split, name in (("train", data.train_split), ("valid", data.valid_split), ("test", data.test_split)):
        for candidate in (name, *DIR_ALIASES[split]):
            files = _dir_pair(directory, candidate, data)
            if files is not None:
                corpus[split] = _stream_files(files, data) if data.streaming and split == "train" else _load_files(files, data)
                break
        else:
            if split != "test":
                raise DataError(
                    f"data.dir: no {split} split in {directory}: expected {name}.{data.src_lang}[.gz] and "
                    f"{name}.{data.tgt_lang}[.gz] (or one of the names {', '.join(DIR_ALIASES[split])})"
                )
    return corpus


def _dir_pair(directory: Path, name: str, data: DataConfig) -> tuple[str, str] | None:
    for suffix in (".gz", ""):
        src, tgt = directory / f"{name}.{data.src_lang}{suffix}", directory / f"{name}.{data.tgt_lang}{suffix}"
        if src.is_file() and tgt.is_file():
            return str(src), str(tgt)
    return None


def _load_files(files: tuple[str, ...], data: DataConfig) -> datasets.Dataset:
    import datasets

    for f in files:
        if not Path(f).is_file():
            raise DataError(f"corpus file {f} does not exist")
    if len(files) == 2:
        src, tgt = read_lines(files[0], errors="replace"), read_lines(files[1], errors="replace")
        if not src or not tgt:
            empty = [f for f, lines in zip(files, (src, tgt)) if not lines]
            raise DataError(f"empty corpus file: {', '.join(empty)}")
        if len(src) != len(tgt):
            raise DataError(
                f"misaligned corpus: {files[0]} has {len(src)} lines but {files[1]} has {len(tgt)}; parallel files need one sentence per line, in the same order"
            )
        return datasets.Dataset.from_dict({"src": src, "tgt": tgt})
    if len(files) == 1:
        path = files[0]
        if path.endswith((".tsv", ".tsv.gz")):
            return _load_tsv(path)
        if path.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz")):
            ds = datasets.load_dataset("json", data_files=path, split="train")
            return _to_pairs(ds, data, path)
    raise DataError(f"corpus files {list(files)}: give two files [source, target] with one sentence per line (plain or .gz), or one .tsv or .jsonl file")


def _load_tsv(path: str) -> datasets.Dataset:
    import datasets

    src, tgt = [], []
    for number, line in enumerate(read_lines(path, errors="replace"), 1):
        cells = line.split("\t")
        if len(cells) != 2:
            raise DataError(f"{path} line {number}: expected 2 tab-separated columns (source, target), found {len(cells)}")
        src.append(cells[0])
        tgt.append(cells[1])
    if not src:
        raise DataError(f"empty corpus file: {path}")
    return datasets.Dataset.from_dict({"src": src, "tgt": tgt})


def _stream_files(files: tuple[str, ...], data: DataConfig) -> datasets.IterableDataset:
    """Local training files as an IterableDataset of `src`/`tgt` pairs, read line by line."""
    import datasets

    for f in files:
        if not Path(f).is_file():
            raise DataError(f"corpus file {f} does not exist")
    if len(files) == 2:
        return datasets.IterableDataset.from_generator(_pair_lines, gen_kwargs={"src_path": files[0], "tgt_path": files[1]})
    if len(files) == 1 and files[0].endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz")):
        return _to_pairs(datasets.load_dataset("json", data_files=files[0], split="train", streaming=True), data, files[0])
    raise DataError(f"data.streaming reads two files [source, target] (plain or .gz) or one .jsonl file; got {list(files)}")


def _pair_lines(src_path: str, tgt_path: str) -> Iterator[dict[str, str]]:
    """Parallel lines of two files; misaligned files fail when the shorter one ends."""
    count = 0
    with open_text(src_path, errors="replace") as src, open_text(tgt_path, errors="replace") as tgt:
        for s, t in itertools.zip_longest(src, tgt):
            if s is None or t is None:
                longer, shorter = (src_path, tgt_path) if t is None else (tgt_path, src_path)
                raise DataError(
                    f"misaligned corpus: {shorter} has {count} lines but {longer} has more; parallel files need one sentence per line, in the same order"
                )
            count += 1
            yield {"src": strip_line_end(s), "tgt": strip_line_end(t)}
    if count == 0:
        raise DataError(f"empty corpus files: {src_path}, {tgt_path}")


def encode_split(ds: datasets.Dataset, encode_src, encode_tgt, max_len: int, name: str) -> EncodedSplit:
    """Tokenize a split and drop pairs with an empty side or more than `max_len` tokens on a side."""
    src_ids = encode_src(list(ds["src"]))
    tgt_ids = encode_tgt(list(ds["tgt"]))
    src, tgt, keep = filter_by_length(src_ids, tgt_ids, max_len)
    if not keep:
        raise DataError(
            f"the {name} is empty after length filtering: 0 of {len(src_ids)} pairs have 1 to {max_len} tokens on both sides (data.max_len={max_len}); raise data.max_len or check the files"
        )
    return EncodedSplit(src=src, tgt=tgt, rows=np.asarray(keep, dtype=np.int64), dropped=len(src_ids) - len(keep))
