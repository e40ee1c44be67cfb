"""OpenAI CLIP's BPE file (``bpe_simple_vocab_16e6.txt.gz``) -> a Hugging Face CLIP tokenizer.

The OpenAI CLIP release ships its tokenizer as one gzip text file of BPE merges: a header line,
then one merge per line (two space-separated symbols, rank order). OpenAI's tokenizer uses the
first ``49152 - 256 - 2 = 48,894`` merges; its vocabulary is, in id order:

1. the 256 byte symbols of the byte-level alphabet (bytes mapped to printable characters, the
   printable bytes first), ids 0-255;
2. the same 256 symbols with the end-of-word suffix ``</w>``, ids 256-511;
3. each merge's two symbols joined, in merge order;
4. ``<|startoftext|>`` and ``<|endoftext|>`` (49,406 and 49,407 for the full file).

:func:`convert_openai_bpe` builds that vocabulary, hands vocabulary and merges to
``transformers``' ``CLIPTokenizer`` (which sets up CLIP's lower-casing normaliser, its word
regex, byte-level pre-tokeniser and ``</w>`` BPE with the ``tokenizers`` library) and saves the
result as a tokenizer folder (written beside its destination, then renamed), which
:func:`tvr.data.tokenizer.load_tokenizer` reads like any Hugging Face CLIP tokenizer folder.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from tvr.data.tokenizer import BOS_TOKEN, EOS_TOKEN, TextTokenizer, TokenizerError

OPENAI_BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
# OpenAI CLIP keeps this many merges of the file: vocabulary 49,408 = 2 x 256 + merges + 2.
MAX_MERGES = 49152 - 256 - 2
END_OF_WORD = "</w>"
# Where users usually find the file (for error messages).
WHERE_TO_FIND = (
    f"{OPENAI_BPE_FILE} is OpenAI CLIP's tokenizer: it is in the openai/CLIP repository at "
    f"clip/{OPENAI_BPE_FILE}, and installed with the `clip` or `open_clip_torch` Python packages "
    f"(site-packages/clip/{OPENAI_BPE_FILE}, site-packages/open_clip/{OPENAI_BPE_FILE})"
)


def missing_tokenizer_message(pretrained: str, what: str) -> str:
    """The error for a ``model.pretrained`` without a tokenizer: which file to provide, where
    it is usually found. ``what`` says what ``pretrained`` is (``"an OpenAI archive"``)."""
    return (
        f"model.pretrained={pretrained!r} is {what}: set model.tokenizer to OpenAI's "
        f"{OPENAI_BPE_FILE} (converted once into the run's tokenizer/) or to a Hugging Face "
        "CLIP folder with tokenizer.json or vocab.json + merges.txt (a download of "
        f"openai/clip-vit-base-patch32 has them). {WHERE_TO_FIND}"
    )


def is_openai_bpe_file(path: str | Path) -> bool:
    """Whether ``path`` names a BPE merges file (``*.txt.gz`` or ``*.txt``), not a folder."""
    return Path(str(path)).name.endswith((".txt.gz", ".txt"))


def byte_symbols() -> list[str]:
    """The byte-level alphabet in OpenAI's (and GPT-2's) order: symbol ``i`` stands for one byte.

    Printable bytes (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``) stand for themselves and come
    first; every other byte ``b`` is mapped to ``chr(256 + n)``, ``n`` counting them in byte
    order, and they follow.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    kept = set(printable)
    others = [b for b in range(256) if b not in kept]
    return [chr(b) for b in printable] + [chr(256 + n) for n in range(len(others))]


def read_openai_bpe(path: str | Path, max_merges: int = MAX_MERGES) -> list[tuple[str, str]]:
    """The merges of an OpenAI BPE file, in rank order (the header line skipped).

    At most ``max_merges`` are kept, as OpenAI's tokenizer keeps; blank lines at the end are
    ignored.

    Raises:
        TokenizerError: the file is missing, not gzip/UTF-8, has no merges, or a merge line is
            not two space-separated symbols (naming the file and line).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise TokenizerError(f"BPE file {path} does not exist; {WHERE_TO_FIND}")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise TokenizerError(
            f"BPE file {path}: cannot read it as gzip-compressed UTF-8 text ({exc}); expected "
            f"OpenAI's {OPENAI_BPE_FILE}"
        ) from None
    lines = text.split("\n")
    merges: list[tuple[str, str]] = []
    for number, line in enumerate(lines[1:], start=2):
        if len(merges) == max_merges:
            break
        if not line.strip():
            if any(rest.strip() for rest in lines[number:]):
                raise TokenizerError(f"BPE file {path}, line {number}: empty line among merges")
            break
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise TokenizerError(
                f"BPE file {path}, line {number}: expected two space-separated symbols, got "
                f"{line!r}"
            )
        merges.append((parts[0], parts[1]))
    if not merges:
        raise TokenizerError(f"BPE file {path}: no merges after the header line")
    return merges


def openai_clip_vocab(merges: list[tuple[str, str]], source: str = "BPE file") -> dict[str, int]:
    """OpenAI CLIP's vocabulary for ``merges`` (order in the module docstring).

    Raises:
        TokenizerError: a merge uses a symbol not yet in the vocabulary, or produces one
            twice (naming the merge's line in ``source``).
    """
    base = byte_symbols()
    order = [*base, *(s + END_OF_WORD for s in base)]
    vocab = {s: i for i, s in enumerate(order)}
    for rank, (a, b) in enumerate(merges):
        line = rank + 2
        for sym in (a, b):
            if sym not in vocab:
                raise TokenizerError(
                    f"{source}, line {line}: merge {a!r} {b!r} uses {sym!r}, which neither the "
                    "byte alphabet nor an earlier merge produces"
                )
        joined = a + b
        if joined in vocab:
            raise TokenizerError(f"{source}, line {line}: merge {a!r} {b!r} produces {joined!r} "
                                 "a second time")
        vocab[joined] = len(vocab)
    for special in (BOS_TOKEN, EOS_TOKEN):
        vocab[special] = len(vocab)
    return vocab


def tokenizer_from_openai_bpe(path: str | Path) -> TextTokenizer:
    """A :class:`TextTokenizer` (``CLIPTokenizer``) built in memory from an OpenAI BPE file.

    Raises:
        TokenizerError: as :func:`read_openai_bpe` and :func:`openai_clip_vocab`.
    """
    from transformers import CLIPTokenizer

    merges = read_openai_bpe(path)
    vocab = openai_clip_vocab(merges, source=f"BPE file {path}")
    hf = CLIPTokenizer(vocab=vocab, merges=merges, unk_token=EOS_TOKEN, bos_token=BOS_TOKEN,
                       eos_token=EOS_TOKEN, pad_token=EOS_TOKEN)
    return TextTokenizer(hf)


def convert_openai_bpe(path: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Convert an OpenAI BPE file into a tokenizer folder at ``out_dir``.

    The folder (``tokenizer.json``, ``tokenizer_config.json``, ...) is written to a temporary
    sibling and renamed into place.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        TokenizerError: as :func:`read_openai_bpe` and :func:`openai_clip_vocab`.
        FileExistsError: ``out_dir`` exists, is not empty, and ``overwrite`` is False.
    """
    return tokenizer_from_openai_bpe(path).save(out_dir, overwrite=overwrite)
