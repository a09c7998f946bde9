"""SentencePiece subwords: train on the training split, load, encode, decode.

The special ids live here and nowhere else; every model is trained with the same ones, so a
model directory's meta.json can record them and a loader can check them.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sentencepiece as spm

from seq2seq.atomic import atomic_write

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3
SPECIAL_IDS = {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID}

JOINT_MODEL = "spm.model"
SRC_MODEL = "spm.src.model"
TGT_MODEL = "spm.tgt.model"


def pad_with_eos(seqs: Sequence[np.ndarray], width: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Token ids without EOS → (B, S) int64 ids with EOS appended and PAD after, and (B,) lengths
    (EOS included): the source batch both searches take (torch wraps it in seq2seq.data.batching.pad_sources).
    S is the longest length, or `width` where that is larger."""
    lens = np.fromiter((len(s) + 1 for s in seqs), dtype=np.int64, count=len(seqs))
    out = np.full((len(seqs), max(int(lens.max()), width)), PAD_ID, dtype=np.int64)
    for row, s in enumerate(seqs):
        out[row, : len(s)] = s
        out[row, len(s)] = EOS_ID
    return out, lens


@dataclass(frozen=True)
class Tokenizer:
    """The source and target SentencePiece processors (one shared object when joint)."""

    src: spm.SentencePieceProcessor
    tgt: spm.SentencePieceProcessor
    joint: bool

    @property
    def src_vocab_size(self) -> int:
        return self.src.get_piece_size()

    @property
    def tgt_vocab_size(self) -> int:
        return self.tgt.get_piece_size()

    def encode_src(self, texts: list[str], alpha: float = 0.0) -> list[list[int]]:
        return _encode(self.src, texts, alpha)

    def encode_tgt(self, texts: list[str], alpha: float = 0.0) -> list[list[int]]:
        return _encode(self.tgt, texts, alpha)

    def decode_tgt(self, ids: list[list[int]]) -> list[str]:
        return _one_call_or_each(self.tgt.decode, ids)

    def src_pieces(self, text: str) -> list[str]:
        return self.src.encode(text, out_type=str)

    def tgt_pieces(self, ids: list[int]) -> list[str]:
        return [self.tgt.id_to_piece(i) for i in ids]


# SentencePiece starts a pool of threads (one per CPU) on every call with a list, unless told how
# many: on 2 cores that cost 0.8 ms to decode one sentence (2 µs in one thread), more than the
# exported runtime takes to translate it, and 3 ms to encode one. A pool paid off only from lists
# of thousands (29,000 sentences: 87 ms in one thread, 73 ms in two; 1,000: 6.4 ms and 6.9).
POOL_FROM = 10_000
# Even in one thread, a call with a list costs about 80 µs before its first text (encoding one
# sentence alone takes 2 µs), so short lists go one text per call: 64 sentences encoded in 0.15 ms
# rather than 0.21, decoded in 0.12 rather than 0.15; from about 100 texts the list call is faster
# (256: 0.51 ms against 0.62). A server's one-sentence request paid 50 µs of its event loop's time.
LIST_FROM = 100


def _one_call_or_each(code: Callable, items: list) -> list:
    """SentencePiece's `code` (encode or decode) over items: one call per item below LIST_FROM, else one
    call for the list, in one thread below POOL_FROM and with the pool (one thread per CPU) from there."""
    if len(items) < LIST_FROM:
        return [code(item) for item in items]
    return code(items, num_threads=-1 if len(items) >= POOL_FROM else 1)


def _encode(sp: spm.SentencePieceProcessor, texts: list[str], alpha: float) -> list[list[int]]:
    if alpha > 0:
        # One thread: with several, which sentence gets which random draw would vary run to run.
        return sp.encode(texts, enable_sampling=True, alpha=alpha, nbest_size=-1, num_threads=1)
    return _one_call_or_each(sp.encode, texts)


def reachable_target_ids(tokenizer: Tokenizer, segmented: Iterable[Sequence[int]]) -> list[int]:
    """The target ids that any segmentation of these sentences can hold, sampled ones included.

    `segmented` is each sentence's best segmentation. Every segmentation of a sentence cuts the
    same normalized text, and a piece never spans a word boundary (SentencePiece splits on
    whitespace; "▁" only starts a piece), so a piece can occur only as a substring of one of the
    text's words. Returns the special ids, the ids seen (byte-fallback pieces among them) and the
    pieces found inside the words, ascending.
    """
    sp = tokenizer.tgt
    ids = set(SPECIAL_IDS.values())
    words: set[str] = set()
    for sentence in segmented:
        sentence = [int(i) for i in sentence]
        ids.update(sentence)
        words.update("".join(sp.id_to_piece(sentence)).replace("▁", "\n▁").split("\n"))
    piece_ids = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    longest = max(map(len, piece_ids))
    # Every substring up to the longest piece: linear in the words' length, whatever the vocabulary.
    found = {w[a:b] for w in words for a in range(len(w)) for b in range(a + 1, min(len(w), a + longest) + 1)}
    ids.update(piece_ids[piece] for piece in found.intersection(piece_ids))
    return sorted(ids)


def seed_sampling(*key: int) -> None:
    """Seed SentencePiece's subword sampling from a key such as (seed, epoch, batch), so the
    segmentations drawn for a batch are the same in a resumed run."""
    spm.set_random_generator_seed(hash(key) & 0x7FFFFFFF)


def model_files(joint: bool) -> list[str]:
    """The SentencePiece file names that a directory holds for this layout."""
    return [JOINT_MODEL] if joint else [SRC_MODEL, TGT_MODEL]


def train_tokenizer(
    out_dir: Path,
    src_texts: list[str],
    tgt_texts: list[str],
    *,
    vocab_size: int,
    model_type: str,
    character_coverage: float,
    byte_fallback: bool,
    joint: bool,
    seed: int,
) -> Tokenizer:
    """Train SentencePiece on the training split and save it in `out_dir`; same data and seed, same model."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if joint:
        _train_one(out_dir / JOINT_MODEL, [src_texts, tgt_texts], vocab_size, model_type, character_coverage, byte_fallback, seed)
    else:
        _train_one(out_dir / SRC_MODEL, [src_texts], vocab_size, model_type, character_coverage, byte_fallback, seed)
        _train_one(out_dir / TGT_MODEL, [tgt_texts], vocab_size, model_type, character_coverage, byte_fallback, seed)
    return load_tokenizer(out_dir, joint)


def _train_one(
    path: Path,
    corpora: list[list[str]],
    vocab_size: int,
    model_type: str,
    character_coverage: float,
    byte_fallback: bool,
    seed: int,
) -> None:
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    # Sentences from an iterator and the model into memory: no file paths end up inside the
    # model, so the same data and seed give the same bytes wherever the run directory lies.
    spm.SentencePieceTrainer.train(
        sentence_iterator=(line.replace("\n", " ") for texts in corpora for line in texts if line),
        model_writer=model,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        byte_fallback=byte_fallback,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        # Reading every sentence in order keeps training deterministic for a seed.
        shuffle_input_sentence=False,
        input_sentence_size=0,
        # A small corpus may not support the requested size; a smaller vocabulary beats a crash.
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    data = model.getvalue()
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def copy_tokenizer(source: Path, out_dir: Path, joint: bool) -> Tokenizer:
    """Copy another run's SentencePiece model(s) into `out_dir` and load them (`tokenizer.reuse`)."""
    names = model_files(joint)
    missing = [name for name in names if not (source / name).is_file()]
    if missing:
        from seq2seq.config import ConfigError  # here, not at the top: an exported model's runtime loads tokenizers without yaml

        layout = "joint" if joint else "separate"
        raise ConfigError(
            [
                f"tokenizer.reuse: {source} holds no {' or '.join(missing)}, which a {layout} vocabulary "
                f"(tokenizer.joint={str(joint).lower()}) needs; point it at a run or model directory trained with that layout"
            ]
        )
    copy_model_files(source, out_dir, joint)
    return load_tokenizer(out_dir, joint)


def copy_model_files(source: Path, out_dir: Path, joint: bool) -> None:
    """Copy the SentencePiece file(s) of this layout from `source` into `out_dir`, each atomically."""
    if source.resolve() == out_dir.resolve():
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in model_files(joint):
        data = (source / name).read_bytes()
        atomic_write(out_dir / name, lambda tmp, data=data: tmp.write_bytes(data))


def load_tokenizer(directory: Path, joint: bool) -> Tokenizer:
    if joint:
        sp = spm.SentencePieceProcessor(model_file=str(directory / JOINT_MODEL))
        return Tokenizer(sp, sp, True)
    src = spm.SentencePieceProcessor(model_file=str(directory / SRC_MODEL))
    tgt = spm.SentencePieceProcessor(model_file=str(directory / TGT_MODEL))
    return Tokenizer(src, tgt, False)


def tokenizer_sha256(directory: Path, joint: bool) -> str:
    """One digest over the tokenizer files, to tie a model directory's weights to its vocabulary."""
    digest = hashlib.sha256()
    for name in model_files(joint):
        digest.update((directory / name).read_bytes())
    return digest.hexdigest()
