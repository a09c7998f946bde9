"""Joined training pairs: two pairs run together into one, so the model learns to translate text
that the sentence splitter cannot cut.

A caption without its full stop followed by another ("A man cleaning windows A dog runs.") reaches
the model as one "sentence"; a model that has only seen one sentence per pair tends to translate
the first half and stop. Training on a share of joined pairs, the first half without its final
full stop half of the time, teaches it to carry on.
"""

from __future__ import annotations

import numpy as np


def add_joined_pairs(
    src: list[np.ndarray], tgt: list[np.ndarray], *, share: float, stop_src: int | None, stop_tgt: int | None, max_len: int, seed: int, epoch: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The pairs and `share`·N more, each two random pairs joined (source to source, target to
    target); the same seed and epoch give the same pairs, which an exact resume relies on.

    stop_src, stop_tgt: the full stop's piece id on each side (None: never dropped). Where both
    first halves end in it, it is dropped from both half of the time. Joined pairs over `max_len`
    tokens on a side are left out, as the corpus filter leaves out long pairs.
    """
    count = round(share * len(src))
    if count == 0:
        return src, tgt
    rng = np.random.default_rng([seed, epoch, 0x501E])
    firsts, seconds = rng.integers(len(src), size=count), rng.integers(len(src), size=count)
    drop_stop = rng.random(count) < 0.5
    src, tgt = list(src), list(tgt)
    for i, j, drop in zip(firsts.tolist(), seconds.tolist(), drop_stop.tolist()):
        first_src, first_tgt = src[i], tgt[i]
        if drop and stop_src is not None and stop_tgt is not None and _ends_with(first_src, stop_src) and _ends_with(first_tgt, stop_tgt):
            first_src, first_tgt = first_src[:-1], first_tgt[:-1]
        joined_src, joined_tgt = np.concatenate([first_src, src[j]]), np.concatenate([first_tgt, tgt[j]])
        if len(joined_src) <= max_len and len(joined_tgt) <= max_len:
            src.append(joined_src)
            tgt.append(joined_tgt)
    return src, tgt


def _ends_with(ids: np.ndarray, piece: int) -> bool:
    return len(ids) > 1 and int(ids[-1]) == piece
