"""Text tokenisation: tokenizer folders (load, save) and the fixed-length encoder.

A tokenizer folder is what ``transformers`` loads as a ``CLIPTokenizer``: ``tokenizer.json``
(exact pipeline, read by ``AutoTokenizer``) and/or ``vocab.json`` / ``merges.txt`` (read by
``CLIPTokenizer(vocab=..., merges=...)``), plus ``training_words.json`` when the project trained
it (:mod:`tvr.data.bpe_training`), the words seen in training, so a query can report words the
model never saw. :func:`load_tokenizer` reads a folder, a hub id or OpenAI's BPE file.

:class:`TextTokenizer` turns captions into the library's text tensors: ``[SOT] + ids + [EOT]``,
truncated to ``max_words`` with EOT kept last, padded with the pad id, mask 1 on SOT..EOT.

**Cleaning.** CLIP tokenizers (OpenAI's BPE and the project's own, both ``CLIPTokenizer``) see
the text cleaned as OpenAI CLIP cleans it (:func:`clip_clean_text`: ``ftfy.fix_text``, HTML
unescaped twice, whitespace collapsed, stripped), so curly quotes, ``&amp;``, ligatures and
full-width characters give the ids of their plain forms.

**Unknown characters.** A character outside the vocabulary's alphabet (an emoji, ``é`` in a
tokenizer trained on ASCII captions) maps to the tokenizer's unknown token, which for CLIP
tokenizers is ``<|endoftext|>``: left in place it would end the sentence early (the sentence
vector is read at the first EOT). :meth:`TextTokenizer.encode` therefore drops special ids
(SOT, EOT, padding) from the body before adding SOT/EOT; text the vocabulary covers never
produces them, so its ids are unchanged. :meth:`TextTokenizer.unknown_characters` and
:meth:`TextTokenizer.unknown_words` say what was dropped or never seen in training.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tokenizers import (
    Tokenizer,
)

from tvr.io import atomic_write_text

logger = logging.getLogger(__name__)

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
TRAINING_WORDS_FILE = "training_words.json"

class TokenizerError(ValueError):
    """A tokenizer folder or id that cannot be loaded, or bad tokenizer input."""


_WHITESPACE = re.compile(r"\s+")
_FTFY_WARNED = threading.Event()


def _fix_text(text: str) -> str:
    """``ftfy.fix_text`` (in requirements.txt); without ftfy, warn once and leave ``text``."""
    try:
        import ftfy
    except ImportError:
        if not _FTFY_WARNED.is_set():
            _FTFY_WARNED.set()
            logger.warning(
                "ftfy is not installed (pip install -r requirements.txt): CLIP text cleaning "
                "skips ftfy.fix_text, so curly quotes, ligatures and full-width characters may "
                "not get OpenAI CLIP's ids"
            )
        return text
    return ftfy.fix_text(text)


def clip_clean_text(text: str) -> str:
    """Clean ``text`` as OpenAI CLIP's tokenizer does before BPE (``basic_clean`` +
    ``whitespace_clean``; lower-casing is left to the tokenizer's normaliser).

    ``ftfy.fix_text`` (mojibake, ligatures such as ``ﬁ``, full-width letters, curly quotes),
    ``html.unescape`` twice (``&amp;amp;`` -> ``&``), whitespace runs collapsed to one space,
    stripped. Plain ASCII text without ``&`` entities is returned unchanged.
    """
    text = _fix_text(text)
    text = html.unescape(html.unescape(text))
    return _WHITESPACE.sub(" ", text).strip()


def split_words(tok: Tokenizer, text: str) -> list[str]:
    """The pre-tokenised words of ``text`` under ``tok``'s normaliser and pre-tokeniser."""
    normalized = tok.normalizer.normalize_str(text) if tok.normalizer is not None else text
    if tok.pre_tokenizer is None:
        return normalized.split()
    return [normalized[a:b] for _, (a, b) in tok.pre_tokenizer.pre_tokenize_str(normalized)]


def check_free(out_dir: Path) -> None:
    """Raise FileExistsError when ``out_dir`` exists and is not an empty folder."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(
            f"tokenizer folder {out_dir} exists and is not empty (pass overwrite=True)"
        )


def save_folder(hf, words: Sequence[str] | None, out_dir: Path, vocab_model=None) -> None:
    """Write ``hf`` (and the training word list) to a temporary sibling, then rename it."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        if vocab_model is not None:
            vocab_model.save(str(tmp))  # vocab.json + merges.txt
        hf.save_pretrained(str(tmp))
        if words is not None:
            atomic_write_text(tmp / TRAINING_WORDS_FILE, json.dumps(sorted(words), indent=0) + "\n")
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace_dir(src: Path, dst: Path) -> None:
    """Move folder ``src`` to ``dst``, replacing an existing ``dst``."""
    if not dst.exists():
        os.replace(src, dst)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.old.", dir=dst.parent))
    os.replace(dst, old / dst.name)
    os.replace(src, dst)
    shutil.rmtree(old, ignore_errors=True)


def load_tokenizer(path_or_hub_id: str | Path) -> TextTokenizer:
    """Load a :class:`TextTokenizer` from a local folder, a hub id, or OpenAI's BPE file.

    Reads ``training_words.json`` when the folder has one. See :func:`load_hf_tokenizer` for
    how the folder or id is resolved; an existing ``*.txt.gz`` file is read as OpenAI CLIP's
    ``bpe_simple_vocab_16e6.txt.gz`` (:mod:`tvr.data.clip_bpe`).

    Raises:
        TokenizerError: as :func:`load_hf_tokenizer`, or a malformed ``training_words.json``
            or BPE file.
    """
    from tvr.data.clip_bpe import is_openai_bpe_file, tokenizer_from_openai_bpe

    if is_openai_bpe_file(path_or_hub_id) and Path(str(path_or_hub_id)).expanduser().is_file():
        return tokenizer_from_openai_bpe(Path(str(path_or_hub_id)).expanduser())
    hf = load_hf_tokenizer(path_or_hub_id)
    words_file = Path(str(path_or_hub_id)).expanduser() / TRAINING_WORDS_FILE
    words = None
    if words_file.is_file():
        try:
            words = json.loads(words_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise TokenizerError(f"{words_file}: not valid JSON ({exc})") from exc
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise TokenizerError(f"{words_file}: expected a JSON list of strings")
    return TextTokenizer(hf, words)


def load_hf_tokenizer(path_or_hub_id: str | Path):  # -> transformers.PreTrainedTokenizerBase
    """Load a Hugging Face tokenizer from a local folder or a hub id.

    A folder with ``tokenizer.json`` / ``tokenizer_config.json`` loads with ``AutoTokenizer``;
    a folder with only ``vocab.json`` + ``merges.txt`` loads as ``CLIPTokenizer(vocab=...,
    merges=...)``. Anything else is tried as a hub id (fails offline).

    Raises:
        TokenizerError: a folder without tokenizer files, a missing path, or a hub id that
            cannot be resolved (offline or unknown).
    """
    from transformers import AutoTokenizer, CLIPTokenizer

    name = str(path_or_hub_id)
    path = Path(name).expanduser()
    if path.is_dir():
        if (path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file():
            try:
                return AutoTokenizer.from_pretrained(str(path))
            except (OSError, ValueError) as exc:
                raise TokenizerError(f"cannot load tokenizer from {path}: {exc}") from exc
        vocab, merges = path / "vocab.json", path / "merges.txt"
        if vocab.is_file() and merges.is_file():
            # vocab=/merges= (vocab_file=/merges_file= are silently ignored in transformers 5).
            return CLIPTokenizer(vocab=str(vocab), merges=str(merges))
        raise TokenizerError(
            f"tokenizer folder {path} has none of tokenizer.json, tokenizer_config.json, "
            "or vocab.json + merges.txt"
        )
    looks_local = path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_local:
        raise TokenizerError(f"tokenizer folder {path} does not exist (or is not a folder)")
    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise TokenizerError(
            f"cannot load tokenizer {name!r}: not a local folder, and the hub id could not be "
            f"resolved (offline, or unknown id): {exc}"
        ) from exc


class TextTokenizer:
    """Fixed-length CLIP-style encoding on top of a Hugging Face tokenizer.

    Args:
        hf_tokenizer: a ``transformers`` tokenizer with BOS and EOS tokens (``CLIPTokenizer``).
        training_words: words the model was trained on (for :meth:`unknown_words`), or None.
        clean: apply :func:`clip_clean_text` before encoding; None (default) = for CLIP
            tokenizers (class name containing ``CLIPTokenizer``) only.

    Use :func:`load_tokenizer` to load a folder or hub id (it reads ``training_words.json``
    when present) and :meth:`save` to write one.
    """

    # Distinct unknown characters already warned about (bounded, so a long run cannot grow it).
    _MAX_WARNED = 1000

    def __init__(
        self,
        hf_tokenizer,
        training_words: Iterable[str] | None = None,
        clean: bool | None = None,
    ) -> None:
        self.hf = hf_tokenizer
        self.clean = "CLIPTokenizer" in type(hf_tokenizer).__name__ if clean is None else clean
        self._warned_chars: set[str] = set()
        if hf_tokenizer.bos_token_id is None or hf_tokenizer.eos_token_id is None:
            raise TokenizerError(
                f"tokenizer {type(hf_tokenizer).__name__} has no BOS/EOS token "
                f"(bos={hf_tokenizer.bos_token!r}, eos={hf_tokenizer.eos_token!r}); expected "
                "CLIP's <|startoftext|> / <|endoftext|>"
            )
        self.training_words: frozenset[str] | None = (
            frozenset(training_words) if training_words is not None else None
        )

    @classmethod
    def from_pretrained(cls, path_or_hub_id: str | Path) -> TextTokenizer:
        """Same as :func:`load_tokenizer`."""
        return load_tokenizer(path_or_hub_id)

    def save(self, out_dir: str | Path, overwrite: bool = False) -> Path:
        """Save to ``out_dir`` (Hugging Face files plus ``training_words.json`` if known).

        The folder is written next to ``out_dir`` and renamed into place. It reloads with
        :func:`load_tokenizer`.

        Raises:
            FileExistsError: ``out_dir`` exists, is not empty, and ``overwrite`` is False.
        """
        out_dir = Path(out_dir)
        if not overwrite:
            check_free(out_dir)
        words = sorted(self.training_words) if self.training_words is not None else None
        save_folder(self.hf, words, out_dir)
        return out_dir

    def __repr__(self) -> str:
        return (
            f"TextTokenizer({type(self.hf).__name__}, vocab_size={self.vocab_size}, "
            f"bos={self.bos_id}, eos={self.eos_id}, pad={self.pad_id})"
        )

    @property
    def bos_id(self) -> int:
        return int(self.hf.bos_token_id)

    @property
    def eos_id(self) -> int:
        return int(self.hf.eos_token_id)

    @property
    def pad_id(self) -> int:
        """The pad id (the tokenizer's own, else EOS, as Hugging Face CLIP pads)."""
        pad = self.hf.pad_token_id
        return int(pad) if pad is not None else self.eos_id

    @property
    def unk_id(self) -> int | None:
        unk = self.hf.unk_token_id
        return int(unk) if unk is not None else None

    @property
    def vocab_size(self) -> int:
        return len(self.hf)

    def clean_text(self, text: str) -> str:
        """``text`` as the tokenizer sees it (:func:`clip_clean_text` when :attr:`clean`)."""
        return clip_clean_text(text) if self.clean else text

    def _raw_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The Hugging Face ids of the cleaned texts, unknown tokens included."""
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TokenizerError(f"text {i} is {type(text).__name__}, expected str")
        if not texts:
            return []
        cleaned = [self.clean_text(t) for t in texts]
        return self.hf(cleaned, add_special_tokens=False)["input_ids"]

    @property
    def _special_ids(self) -> frozenset[int]:
        """Ids that must not appear inside a sentence body (SOT, EOT = CLIP's unknown, pad)."""
        return frozenset({self.bos_id, self.eos_id, self.pad_id})

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Body ids of each text: special ids (unknown characters, for CLIP's EOT-as-unknown)
        dropped, so no EOT lands mid-sentence."""
        special = self._special_ids
        out = []
        for i, ids in enumerate(self._raw_ids(texts)):
            kept = [t for t in ids if t not in special]
            if len(kept) != len(ids):
                self._report_dropped(texts[i], len(ids) - len(kept))
            out.append(kept)
        return out

    def _report_dropped(self, text: str, n_dropped: int) -> None:
        """Warn once per new unknown character (debug-log repeats)."""
        chars = self.unknown_characters(text)
        new = [c for c in chars if c not in self._warned_chars]
        if new and len(self._warned_chars) < self._MAX_WARNED:
            self._warned_chars.update(new)
            logger.warning(
                "dropped %d token(s) the vocabulary cannot represent (characters %s) from %r; "
                "the rest of the text is kept",
                n_dropped,
                ", ".join(repr(c) for c in chars),
                text,
            )
        else:
            logger.debug("dropped %d unknown token(s) from %r", n_dropped, text)

    def encode(
        self, texts: Sequence[str] | str, max_words: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode ``texts`` as ``[SOT] + ids[: max_words - 2] + [EOT]`` padded to ``max_words``.

        Shapes:
            returns: ids ``[N, L]`` int64 and mask ``[N, L]`` int64 (1 on SOT..EOT),
            ``L = max_words``.
        """
        if isinstance(texts, str):
            texts = [texts]
        if max_words < 2:
            raise ValueError(f"max_words must be >= 2 (room for SOT and EOT), got {max_words}")
        ids = torch.full((len(texts), max_words), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(texts), max_words), dtype=torch.long)
        for row, body in enumerate(self._ids(texts)):
            seq = [self.bos_id, *body[: max_words - 2], self.eos_id]
            ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1
        return ids, mask

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Text of ``ids`` without special tokens (padding is special too)."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return self.hf.decode(list(ids), skip_special_tokens=True).strip()

    def num_tokens(self, text: str) -> int:
        """Tokens of ``text`` without SOT/EOT."""
        return len(self._ids([text])[0])

    def truncated(self, text: str, max_words: int) -> bool:
        """Whether :meth:`encode` with ``max_words`` drops tokens of ``text``."""
        return self.num_tokens(text) > max_words - 2

    def words(self, text: str) -> list[str]:
        """The cleaned, normalised, pre-tokenised words of ``text``."""
        text = self.clean_text(text)
        backend = getattr(self.hf, "backend_tokenizer", None)
        if backend is None:
            return text.lower().split()
        return split_words(backend, text)

    def _unknown_ids(self) -> frozenset[int]:
        unk = self.unk_id
        return self._special_ids | ({unk} if unk is not None else set())

    def unknown_characters(self, text: str) -> list[str]:
        """Characters of ``text`` the vocabulary cannot represent, in order, without repeats.

        A character is unknown when encoding it alone gives the unknown token (or another
        special id). :meth:`encode` drops their tokens; an emoji, or ``é`` in a tokenizer
        trained on ASCII captions, is typical.
        """
        bad = self._unknown_ids()
        chars = list(dict.fromkeys(c for c in self.clean_text(text) if not c.isspace()))
        if not chars:
            return []
        return [c for c, ids in zip(chars, self._raw_ids(chars)) if any(t in bad for t in ids)]

    def unrepresentable_words(self, text: str) -> list[str]:
        """Words of ``text`` holding a character the vocabulary cannot represent (dropped by
        :meth:`encode`), in order, without repeats; emoji and symbols included."""
        bad = set(self.unknown_characters(text))
        if not bad:
            return []
        return list(dict.fromkeys(w for w in self.words(text) if bad & set(w)))

    def unknown_words(self, text: str) -> list[str]:
        """Words of ``text`` the model does not know, in order, without repeats.

        A word is unknown when it holds a character the vocabulary cannot represent
        (:meth:`unrepresentable_words`; emoji and symbols too), or, when the tokenizer came
        with ``training_words.json``, when it has a letter or digit and never occurred in the
        training captions. Other punctuation-only words are ignored.
        """
        unrepresentable = set(self.unrepresentable_words(text))
        out: list[str] = []
        for word in self.words(text):
            if word in out:
                continue
            if word in unrepresentable or (
                self.training_words is not None
                and any(ch.isalnum() for ch in word)
                and word not in self.training_words
            ):
                out.append(word)
        return out
