"""Training a from-scratch CLIP-style BPE tokenizer on captions (:func:`train_bpe_tokenizer`).

The vocabulary is learned deterministically (:func:`learn_bpe`) and wrapped in a Hugging Face
``tokenizers`` pipeline: ``</w>`` end-of-word suffix, ``<|startoftext|>`` / ``<|endoftext|>``
specials, lower-casing, whitespace and punctuation pre-tokenisation, a template post-processor
adding BOS/EOS. It is saved as a tokenizer folder that :func:`tvr.data.tokenizer.load_tokenizer`
(and ``transformers``, as a ``CLIPTokenizer``) reads, with ``training_words.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from tvr.data.tokenizer import (
    BOS_TOKEN,
    EOS_TOKEN,
    check_free,
    clip_clean_text,
    save_folder,
    split_words,
)

logger = logging.getLogger(__name__)

# Every character of this alphabet gets a word-initial/-medial and a word-final symbol, so
# ordinary English text never falls back to the unknown token, even for unseen words.
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"-:;()&/"


def _pipeline(tok: Tokenizer) -> None:
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(r"\s+", " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(behavior="isolated")]
    )
    tok.decoder = decoders.BPEDecoder(suffix="</w>")


def train_bpe_tokenizer(
    texts: Iterable[str],
    out_dir: str | Path,
    vocab_size: int = 4096,
    min_frequency: int = 1,
    overwrite: bool = False,
) -> Path:
    """Train a CLIP-style BPE tokenizer on ``texts`` and save it to ``out_dir``.

    The folder holds ``tokenizer.json``, ``tokenizer_config.json``, ``vocab.json``,
    ``merges.txt`` and ``training_words.json``. It is written to a temporary sibling folder and
    renamed into place, so a crash never leaves a half-written tokenizer.

    Args:
        texts: training captions.
        out_dir: destination folder.
        vocab_size: maximum vocabulary size including the two special tokens (a small corpus
            yields fewer).
        min_frequency: minimum pair frequency for a merge.
        overwrite: replace an existing non-empty ``out_dir`` (else FileExistsError).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        ValueError: no non-empty text, or ``vocab_size`` too small.
        FileExistsError: ``out_dir`` exists, is not empty, and ``overwrite`` is False.
    """
    from transformers import CLIPTokenizer  # heavy import, only when training

    out_dir = Path(out_dir)
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise ValueError("train_bpe_tokenizer: no non-empty training text")
    min_size = 2 + 2 * len(_ALPHABET)
    if vocab_size < min_size:
        raise ValueError(
            f"train_bpe_tokenizer: vocab_size {vocab_size} is too small; expected >= {min_size} "
            "(2 specials plus word-medial and word-final symbols for the base alphabet)"
        )
    if not overwrite:
        check_free(out_dir)

    texts = [clip_clean_text(t) for t in texts]  # as TextTokenizer will see them
    probe = Tokenizer(models.BPE(unk_token=EOS_TOKEN, end_of_word_suffix="</w>"))
    _pipeline(probe)
    counts: dict[str, int] = {}
    for text in [*texts, " ".join(_ALPHABET)]:  # each symbol once as a whole word
        for w in split_words(probe, text):
            counts[w] = counts.get(w, 0) + 1
    vocab, merges = learn_bpe(counts, vocab_size, min_frequency)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=EOS_TOKEN,
                               end_of_word_suffix="</w>"))
    _pipeline(tok)
    bos, eos = tok.token_to_id(BOS_TOKEN), tok.token_to_id(EOS_TOKEN)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A {EOS_TOKEN}",
        pair=f"{BOS_TOKEN} $A {EOS_TOKEN} $B:1 {EOS_TOKEN}:1",
        special_tokens=[(BOS_TOKEN, bos), (EOS_TOKEN, eos)],
    )
    words = sorted({w for text in texts for w in split_words(tok, text)})

    hf = CLIPTokenizer(
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
    )
    save_folder(hf, words, out_dir, vocab_model=tok.model)
    logger.info(
        "trained BPE tokenizer: %d tokens, %d training words, saved to %s",
        tok.get_vocab_size(),
        len(words),
        out_dir,
    )
    return out_dir


def learn_bpe(
    word_counts: dict[str, int], vocab_size: int, min_frequency: int = 1
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Learn BPE merges deterministically from word counts (CLIP style, ``</w>`` word ends).

    The ``tokenizers`` trainer numbers its base symbols and breaks ties between equally
    frequent pairs in hash order, which differs between processes; a run's token ids must be
    a function of its captions alone. Here ties go to the lexicographically smallest pair.

    Returns:
        (vocab: specials, sorted base symbols, then merge results in merge order; merges)
    """
    words = {w: [*w[:-1], w[-1] + "</w>"] for w in word_counts if w}
    base = sorted({sym for syms in words.values() for sym in syms}
                  | {c for c in _ALPHABET} | {c + "</w>" for c in _ALPHABET})
    order = [BOS_TOKEN, EOS_TOKEN, *base]
    known = set(order)
    pair_counts: dict[tuple[str, str], int] = {}
    where: dict[tuple[str, str], set[str]] = {}
    for w, syms in words.items():
        for pair in zip(syms, syms[1:]):
            pair_counts[pair] = pair_counts.get(pair, 0) + word_counts[w]
            where.setdefault(pair, set()).add(w)
    merges: list[tuple[str, str]] = []
    while len(order) < vocab_size and pair_counts:
        best = min(pair_counts, key=lambda p: (-pair_counts[p], p))
        if pair_counts[best] < min_frequency:
            break
        merges.append(best)
        joined = best[0] + best[1]
        if joined not in known:
            order.append(joined)
            known.add(joined)
        for w in sorted(where.pop(best, ())):
            syms, n = words[w], word_counts[w]
            for pair in zip(syms, syms[1:]):  # remove this word's old pairs
                pair_counts[pair] -= n
                if pair_counts[pair] <= 0:
                    del pair_counts[pair]
            out, i = [], 0
            while i < len(syms):
                if i + 1 < len(syms) and (syms[i], syms[i + 1]) == best:
                    out.append(joined)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            words[w] = out
            for pair in zip(out, out[1:]):
                pair_counts[pair] = pair_counts.get(pair, 0) + n
                where.setdefault(pair, set()).add(w)
        pair_counts.pop(best, None)
    return {t: i for i, t in enumerate(order)}, merges
