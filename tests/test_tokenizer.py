"""Tests for tvr.data.tokenizer: tokenizer folders (load, save, reload as CLIPTokenizer), fixed-length
encoding, unknown characters and cleaning. Training a BPE vocabulary: tests/test_bpe_training.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tvr.data.bpe_training import train_bpe_tokenizer
from tvr.data.tokenizer import (
    BOS_TOKEN,
    EOS_TOKEN,
    TextTokenizer,
    TokenizerError,
    clip_clean_text,
    load_tokenizer,
)

REPO = Path(__file__).resolve().parents[1]
COMMITTED_TOKENIZERS = [REPO / "checkpoints" / r / "tokenizer" for r in ("demo-base", "demo-drgi")]

CAPTIONS = [
    "A red circle moves left.",
    "a blue square jumps",
    "the green triangle spins, then a red circle moves right",
    "a small yellow star falls on a blue background",
] * 4


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    return train_bpe_tokenizer(CAPTIONS, tmp_path_factory.mktemp("t") / "tok", vocab_size=300)


@pytest.fixture(scope="module")
def tok(tok_dir: Path) -> TextTokenizer:
    return load_tokenizer(tok_dir)


def test_saved_files_and_reload_as_clip_tokenizer(tok_dir: Path, tok: TextTokenizer) -> None:
    from transformers import CLIPTokenizer

    names = {p.name for p in tok_dir.iterdir()}
    assert {"tokenizer.json", "vocab.json", "merges.txt", "training_words.json"} <= names
    assert not [p for p in tok_dir.parent.iterdir() if p.name.startswith(".")]  # no temp dirs
    assert isinstance(tok.hf, CLIPTokenizer)
    vocab = json.loads((tok_dir / "vocab.json").read_text())
    assert vocab[BOS_TOKEN] == tok.bos_id and vocab[EOS_TOKEN] == tok.eos_id
    assert tok.pad_id == tok.eos_id  # pads with EOT, like Hugging Face CLIP
    assert tok.vocab_size == len(vocab) <= 300
    # vocab=/merges= (not vocab_file=) give the same ids as tokenizer.json on plain text.
    plain = CLIPTokenizer(vocab=str(tok_dir / "vocab.json"), merges=str(tok_dir / "merges.txt"))
    text = "a red circle moves left then a blue square jumps"
    assert plain(text)["input_ids"] == tok.hf(text)["input_ids"]
    assert tok.hf(text)["input_ids"][0] == tok.bos_id
    assert tok.hf(text)["input_ids"][-1] == tok.eos_id
    # Training words become single tokens.
    assert tok.num_tokens("circle triangle background") == 3


def test_round_trip(tok: TextTokenizer) -> None:
    ids, mask = tok.encode(["A Red Circle moves LEFT", "a zebra jumps"], 16)
    assert tok.decode(ids[0]) == "a red circle moves left"
    assert tok.decode(ids[1]) == "a zebra jumps"  # unseen word, spelled from sub-words
    assert tok.unk_id not in ids[1][mask[1].bool()][1:-1].tolist()


def test_encode_layout_and_masks(tok: TextTokenizer) -> None:
    ids, mask = tok.encode(["a red circle", "a blue square jumps", ""], 8)
    assert ids.shape == mask.shape == (3, 8)
    assert ids.dtype == mask.dtype == torch.long
    assert mask.tolist() == [[1] * 5 + [0] * 3, [1] * 6 + [0] * 2, [1] * 2 + [0] * 6]
    assert ids[:, 0].tolist() == [tok.bos_id] * 3
    assert ids[0, 4] == ids[1, 5] == ids[2, 1] == tok.eos_id
    assert (ids[mask == 0] == tok.pad_id).all()
    single_ids, single_mask = tok.encode("a red circle", 8)
    assert torch.equal(single_ids[0], ids[0]) and torch.equal(single_mask[0], mask[0])


def test_truncation_keeps_eot(tok: TextTokenizer) -> None:
    long = "a red circle moves left then a blue square jumps and a green triangle spins"
    ids, mask = tok.encode([long], 6)
    assert ids.shape == (1, 6) and mask.tolist() == [[1] * 6]
    assert ids[0, 0] == tok.bos_id and ids[0, -1] == tok.eos_id
    full, _ = tok.encode([long], 64)
    assert ids[0, 1:5].tolist() == full[0, 1:5].tolist()  # the first words are kept
    assert tok.truncated(long, 6) and not tok.truncated(long, 64)
    assert not tok.truncated("a red circle", 5) and tok.truncated("a red circle", 4)
    with pytest.raises(ValueError, match="max_words"):
        tok.encode(["a"], 1)


def test_unknown_words(tok: TextTokenizer) -> None:
    assert tok.unknown_words("A red circle moves left.") == []
    assert tok.unknown_words("a red Zebra, a zebra and a ünicorn!") == ["zebra", "and", "ünicorn"]
    # Without the training word list only unknown-token fallbacks count.
    bare = TextTokenizer(tok.hf)
    assert bare.unknown_words("a red zebra and a ünicorn") == ["ünicorn"]


def test_save_and_reload(tok: TextTokenizer, tmp_path: Path) -> None:
    out = tok.save(tmp_path / "run" / "tokenizer")
    again = load_tokenizer(out)
    assert isinstance(again, TextTokenizer)
    assert again.training_words == tok.training_words
    text = "a red circle moves left"
    assert torch.equal(again.encode([text], 12)[0], tok.encode([text], 12)[0])
    with pytest.raises(FileExistsError, match="tokenizer"):
        tok.save(out)


def test_load_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="does not exist"):
        load_tokenizer(tmp_path / "nope")
    with pytest.raises(TokenizerError, match=r"has none of tokenizer\.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(TokenizerError, match=str(tmp_path)):
        load_tokenizer(tmp_path)


def test_vocab_merges_only_folder(tok_dir: Path, tmp_path: Path, tok: TextTokenizer) -> None:
    for name in ("vocab.json", "merges.txt"):
        (tmp_path / name).write_bytes((tok_dir / name).read_bytes())
    plain = load_tokenizer(tmp_path)
    assert plain.bos_id == tok.bos_id and plain.eos_id == tok.eos_id
    a, _ = plain.encode(["a red circle moves left"], 10)
    b, _ = tok.encode(["a red circle moves left"], 10)
    assert torch.equal(a, b)


# ------------------------------------------------------------------ unknown characters, cleaning
@pytest.fixture(scope="module", params=COMMITTED_TOKENIZERS, ids=lambda p: p.parent.name)
def demo_tok(request) -> TextTokenizer:
    return load_tokenizer(request.param)


def _body(tok: TextTokenizer, ids: torch.Tensor, mask: torch.Tensor) -> list[int]:
    """Ids strictly between SOT and the final EOT of one encoded row."""
    return ids[1 : int(mask.sum()) - 1].tolist()


def test_unknown_characters_do_not_end_the_sentence(demo_tok: TextTokenizer) -> None:
    cat_circle, cat_square = "the red 🐱 circle moves left", "the red 🐱 square grows"
    ids, mask = demo_tok.encode([cat_circle, cat_square], 16)
    assert ids[0].tolist() != ids[1].tolist()
    for row in range(2):
        assert demo_tok.eos_id not in _body(demo_tok, ids[row], mask[row])
        # the sentence vector is read at the first EOT: it is the last valid position
        first_eot = ids[row].tolist().index(demo_tok.eos_id)
        assert first_eot == int(mask[row].sum()) - 1
    # the emoji is dropped, the rest encodes as without it
    plain, _ = demo_tok.encode(["the red circle moves left", "the red square grows"], 16)
    assert torch.equal(ids, plain)
    assert demo_tok.unknown_characters(cat_circle) == ["🐱"]
    assert demo_tok.unrepresentable_words(cat_circle) == ["🐱"]
    assert demo_tok.unknown_words(cat_circle) == ["🐱"]
    # a word with one unknown letter keeps its known pieces and is reported
    ids, mask = demo_tok.encode(["a café circle"], 16)
    assert demo_tok.eos_id not in _body(demo_tok, ids[0], mask[0])
    assert demo_tok.unknown_characters("a café circle 🐱🐶!") == ["é", "🐱", "🐶"]
    assert demo_tok.unknown_words("a café circle 🐱🐶!") == ["café", "🐱🐶!"]
    assert demo_tok.num_tokens("🐱") == 0 and demo_tok.decode(demo_tok.encode("🐱", 4)[0][0]) == ""


def test_unknown_characters_are_logged_once(demo_tok: TextTokenizer, caplog) -> None:
    tok = TextTokenizer(demo_tok.hf, demo_tok.training_words)
    with caplog.at_level("WARNING", logger="tvr.data.tokenizer"):
        tok.encode(["a red 🦊 circle", "a blue 🦊 square"], 12)
    msgs = [r.getMessage() for r in caplog.records if "cannot represent" in r.getMessage()]
    assert len(msgs) == 1 and "'🦊'" in msgs[0]


def test_committed_tokenizer_encodes_known_text_unchanged(demo_tok: TextTokenizer) -> None:
    # pinned ids of the committed SynthVTT vocabulary
    ids, mask = demo_tok.encode(["a red circle"], 8)
    assert ids.tolist() == [[0, 49, 149, 119, 1, 1, 1, 1]] and mask.tolist() == [[1] * 5 + [0] * 3]
    words = sorted(demo_tok.training_words or [])
    assert len(words) > 40
    texts = [" ".join(words), "first the green triangle slides up, then a green cross slides up",
             "  The  YELLOW circle\tmoves to the left. "]
    got, _ = demo_tok.encode(texts, 77)
    for row, body in enumerate(demo_tok.hf(texts, add_special_tokens=False)["input_ids"]):
        seq = [demo_tok.bos_id, *body[:75], demo_tok.eos_id]
        assert got[row, : len(seq)].tolist() == seq
        assert demo_tok.unknown_words(texts[row]) == []


def test_clip_clean_text_known_answers() -> None:
    assert clip_clean_text("  a red\t\n circle  ") == "a red circle"
    assert clip_clean_text("a &amp; b") == "a & b"
    assert clip_clean_text("a &amp;amp; b") == "a & b"  # unescaped twice, as OpenAI does
    assert clip_clean_text("a red circle") == "a red circle"
    pytest.importorskip("ftfy")  # in requirements.txt; the rest is ftfy.fix_text
    assert clip_clean_text("ＲＥＤ ｃｉｒｃｌｅ") == "RED circle"
    assert clip_clean_text("a ﬁsh") == "a fish"
    assert clip_clean_text("it’s a “red” circle") == "it's a \"red\" circle"


@pytest.mark.parametrize(
    ("fancy", "plain"),
    [
        ("a red circle &amp; a blue square", "a red circle & a blue square"),
        ("a red circle &amp;amp; a blue square", "a red circle & a blue square"),
        ("a\u00a0red  circle\n", "a red circle"),
        ("ａ ｒｅｄ ｃｉｒｃｌｅ", "a red circle"),
        ("a ﬁsh circle", "a fish circle"),
        ("it’s a “red” circle", "it's a \"red\" circle"),
    ],
)
def test_cleaned_forms_encode_as_plain(demo_tok: TextTokenizer, fancy: str, plain: str) -> None:
    if any(ord(c) > 0xFF and c not in "\u00a0" for c in fancy):
        pytest.importorskip("ftfy")
    a, _ = demo_tok.encode([fancy], 16)
    b, _ = demo_tok.encode([plain], 16)
    assert a.tolist() == b.tolist()
    assert demo_tok.unknown_words(fancy) == demo_tok.unknown_words(plain)


def test_cleaning_is_what_unescapes(demo_tok: TextTokenizer) -> None:
    assert demo_tok.clean  # a CLIPTokenizer: cleaned by default
    raw = TextTokenizer(demo_tok.hf, clean=False)
    fancy, plain = "a red circle &amp; a blue square", "a red circle & a blue square"
    assert raw.encode([fancy], 16)[0].tolist() != raw.encode([plain], 16)[0].tolist()
    assert demo_tok.encode([fancy], 16)[0].tolist() == raw.encode([plain], 16)[0].tolist()
