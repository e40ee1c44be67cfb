"""Made-up OpenAI-format BPE files (``bpe_simple_vocab_16e6.txt.gz`` layout) for tests.

No download: :func:`write_bpe_file` learns merges from a few caption words, then (for a
full-size file) pads with merges that spell out letter strings, so the vocabulary has OpenAI's
size (49,408, specials at 49,406 and 49,407) when ``n_merges`` is 48,894.
"""

from __future__ import annotations

import gzip
import itertools
import string
from collections.abc import Iterable
from pathlib import Path

from tvr.data.bpe_training import learn_bpe


def made_up_merges(texts: Iterable[str], n_merges: int) -> list[tuple[str, str]]:
    """``n_merges`` valid merges: learned from the lower-cased words of ``texts``, then
    ``(s[:-1], s[-1])`` for letter strings ``s`` of length 2, 3, 4, ... not produced yet."""
    counts: dict[str, int] = {}
    for text in texts:
        for word in text.lower().split():
            word = "".join(c for c in word if c in string.ascii_lowercase)
            if word:
                counts[word] = counts.get(word, 0) + 1
    _, learned = learn_bpe(counts, vocab_size=2 + 2 * 256 + n_merges)
    merges = list(learned[:n_merges])
    produced = {a + b for a, b in merges}
    length = 2
    while len(merges) < n_merges:
        for chars in itertools.product(string.ascii_lowercase, repeat=length):
            if len(merges) == n_merges:
                break
            s = "".join(chars)
            if s not in produced:
                merges.append((s[:-1], s[-1]))
                produced.add(s)
        length += 1
    return merges


def write_bpe_file(path: Path, merges: list[tuple[str, str]]) -> Path:
    """Write ``merges`` as OpenAI's gzip BPE file (a header line, one merge per line)."""
    body = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(body.encode("utf-8")))
    return path
