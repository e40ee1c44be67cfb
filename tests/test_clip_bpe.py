"""OpenAI's BPE file -> tokenizer folder (tvr.data.clip_bpe), checked against a reference.

The reference below is OpenAI CLIP's tokenisation written out plainly from its definition
(lower-case, CLIP's word regex, bytes -> byte symbols, ``</w>`` on the last symbol, merge the
lowest-ranked adjacent pair until none applies, ids from the vocabulary order), on made-up BPE
files: a small one and one of OpenAI's full size (49,408 ids).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import regex

from tests.helpers_bpe import made_up_merges, write_bpe_file
from tvr.data.clip_bpe import (
    MAX_MERGES,
    byte_symbols,
    convert_openai_bpe,
    read_openai_bpe,
    tokenizer_from_openai_bpe,
)
from tvr.data.tokenizer import BOS_TOKEN, EOS_TOKEN, TokenizerError, load_tokenizer

CAPTIONS = [
    "a man is playing a guitar on the stage",
    "a woman is cooking pasta in a kitchen",
    "two dogs are running in the park",
    "people are dancing at a wedding party",
    "a cartoon cat chases a mouse",
]
PROBES = [
    "a man is playing a guitar",
    "The Dogs' park is 2 km away, isn't it?!",
    "unseenword zzzz running-dancing",
    "café naïve 日本 🙂 ok",
    "  spaces\tand\nnewlines  ",
    "it's we've they're i'm you'll he'd",
]
WORD_RE = regex.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
    regex.IGNORECASE,
)


def reference_byte_map() -> dict[int, str]:
    """Byte -> symbol: printable bytes map to themselves, the rest to 256, 257, ... in order."""
    keep = [b for b in range(256) if ord("!") <= b <= ord("~") or ord("¡") <= b <= ord("¬")
            or ord("®") <= b <= ord("ÿ")]
    out = {b: chr(b) for b in keep}
    n = 0
    for b in range(256):
        if b not in out:
            out[b] = chr(256 + n)
            n += 1
    return out


class ReferenceTokenizer:
    """OpenAI CLIP's BPE, written from its definition (no special-token handling needed)."""

    def __init__(self, merges: list[tuple[str, str]]) -> None:
        self.byte_map = reference_byte_map()
        symbols = list(self.byte_map.values())
        vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
        vocab += [BOS_TOKEN, EOS_TOKEN]
        self.ids = {s: i for i, s in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}

    def bpe(self, token: str) -> list[str]:
        word = [*token[:-1], token[-1] + "</w>"]
        while len(word) > 1:
            pairs = [(self.ranks.get(p, float("inf")), i) for i, p in enumerate(zip(word, word[1:]))]
            rank, _ = min(pairs)
            if rank == float("inf"):
                break
            best = next(p for p in zip(word, word[1:]) if self.ranks.get(p) == rank)
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        return word

    def encode(self, text: str) -> list[int]:
        text = " ".join(text.split()).lower()
        ids = []
        for token in WORD_RE.findall(text):
            symbols = "".join(self.byte_map[b] for b in token.encode("utf-8"))
            ids += [self.ids[s] for s in self.bpe(symbols)]
        return ids


@pytest.fixture(scope="module", params=["small", "full"])
def bpe_case(request, tmp_path_factory):
    n = 300 if request.param == "small" else MAX_MERGES
    merges = made_up_merges(CAPTIONS, n)
    path = write_bpe_file(tmp_path_factory.mktemp("bpe") / "bpe_simple_vocab_16e6.txt.gz", merges)
    return path, merges


def test_byte_alphabet_matches_reference() -> None:
    assert byte_symbols() == list(reference_byte_map().values())


def test_converted_tokenizer_matches_reference(bpe_case, tmp_path: Path) -> None:
    path, merges = bpe_case
    out = convert_openai_bpe(path, tmp_path / "run" / "tokenizer")
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # temp renamed away
    tok = load_tokenizer(out)
    ref = ReferenceTokenizer(merges)
    n_vocab = 512 + len(merges) + 2
    assert tok.vocab_size == n_vocab
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (n_vocab - 2, n_vocab - 1, n_vocab - 1)
    if len(merges) == MAX_MERGES:
        assert (n_vocab, tok.bos_id, tok.eos_id) == (49408, 49406, 49407)  # OpenAI's ids
    for text in PROBES + CAPTIONS:
        assert tok.hf(text, add_special_tokens=False)["input_ids"] == ref.encode(text), text
    # caption words were learned as merges: each is one token
    assert tok.num_tokens("guitar kitchen wedding") == 3
    ids, mask = tok.encode(["a man is playing a guitar"], max_words=12)
    body = ref.encode("a man is playing a guitar")
    assert ids[0, : len(body) + 2].tolist() == [tok.bos_id, *body, tok.eos_id]
    assert mask[0].sum().item() == len(body) + 2
    # the whole file is only read once: the folder reloads without it
    path_copy = tmp_path / "gone.txt.gz"
    path.rename(path_copy)
    try:
        assert load_tokenizer(out).hf("a man")["input_ids"] == tok.hf("a man")["input_ids"]
    finally:
        path_copy.rename(path)


def test_only_openais_number_of_merges_is_used(tmp_path: Path) -> None:
    merges = made_up_merges(CAPTIONS, MAX_MERGES + 40)
    path = write_bpe_file(tmp_path / "bpe.txt.gz", merges)
    assert read_openai_bpe(path) == merges[:MAX_MERGES]
    assert tokenizer_from_openai_bpe(path).vocab_size == 49408


def test_bad_bpe_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match=r"does not exist.*openai/CLIP"):
        read_openai_bpe(tmp_path / "missing.txt.gz")
    not_gzip = tmp_path / "plain.txt.gz"
    not_gzip.write_text("#version\na b\n")
    with pytest.raises(TokenizerError, match="plain.txt.gz: cannot read it as gzip"):
        read_openai_bpe(not_gzip)
    bad_line = tmp_path / "bad.txt.gz"
    bad_line.write_bytes(gzip.compress(b"#version: 0.2\nt h\nth e r\n"))
    with pytest.raises(TokenizerError, match=r"bad.txt.gz, line 3: expected two"):
        read_openai_bpe(bad_line)
    empty = tmp_path / "empty.txt.gz"
    empty.write_bytes(gzip.compress(b"#version: 0.2\n"))
    with pytest.raises(TokenizerError, match="no merges"):
        read_openai_bpe(empty)
    unknown = tmp_path / "unknown.txt.gz"
    unknown.write_bytes(gzip.compress(b"#version: 0.2\nt h\nxy z\n"))
    with pytest.raises(TokenizerError, match=r"line 3: merge 'xy' 'z' uses 'xy'"):
        tokenizer_from_openai_bpe(unknown)


def test_folder_has_hf_files(bpe_case, tmp_path: Path) -> None:
    path, merges = bpe_case
    out = convert_openai_bpe(path, tmp_path / "tok")
    assert (out / "tokenizer.json").is_file()
    data = json.loads((out / "tokenizer.json").read_text())
    assert data["model"]["type"] == "BPE" and data["model"]["end_of_word_suffix"] == "</w>"
    with pytest.raises(FileExistsError):
        convert_openai_bpe(path, out)
