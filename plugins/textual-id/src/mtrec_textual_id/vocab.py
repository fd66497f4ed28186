"""The word-piece vocabulary shared by the ID generator and the recommender.

Pieces come from an existing tokenizer (default: the uncased word-piece tokenizer shipped with the
default sentence encoder, all-MiniLM-L6-v2), restricted to the pieces that occur in the catalogue's
texts or the prompt templates (a piece no text contains can never be a meaningful ID token), and
optionally to the ``max_pieces`` pieces found in the most item texts (the template pieces and the
digits are always kept): the output layer and softmax over the vocabulary are most of the cost of
both models on a CPU.  Pieces left out read as ``[UNK]``, which IDs never contain.  Index 0 is ``[END]`` (the end of an
ID, also its padding), index 1 ``[UNK]``; the rest are tokenizer pieces in first-seen order.
"""

from __future__ import annotations

from typing import Any, Iterable

END, UNK = 0, 1
SPECIALS = ("[END]", "[UNK]")
DIGITS = tuple(str(i) for i in range(10))  # always present: the last-resort disambiguation uses them


def load_tokenizer(text_model: str, option: str = "identifier.params.text_model") -> Any:
    """The tokenizer of a registered text model (or a local folder), loaded offline."""
    from transformers import AutoTokenizer

    from mtrec.text import resolve_text_model

    return AutoTokenizer.from_pretrained(str(resolve_text_model(text_model, option)))


class PieceVocab:
    """Compact index over tokenizer pieces; ``encode`` / ``decode`` speak compact ids."""

    def __init__(self, pieces: list[str], tokenizer: Any = None) -> None:
        if tuple(pieces[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a PieceVocab starts with {SPECIALS}")
        self.pieces = list(pieces)
        self.index = {p: i for i, p in enumerate(self.pieces)}
        self.tokenizer = tokenizer

    def __len__(self) -> int:
        return len(self.pieces)

    @classmethod
    def build(cls, tokenizer: Any, texts: Iterable[str], always: Iterable[str] = (),
              max_pieces: int | None = None) -> "PieceVocab":
        """Pieces of ``texts`` (by descending number of texts holding them, ties in first-seen order,
        at most ``max_pieces``) plus every piece of ``always`` and the digits."""
        return cls.from_pieces(tokenizer, tokenize_many(tokenizer, list(texts)), always, max_pieces)

    @classmethod
    def from_pieces(cls, tokenizer: Any, tokenized: list[list[str]], always: Iterable[str] = (),
                    max_pieces: int | None = None) -> "PieceVocab":
        """:meth:`build` from texts already split into pieces."""
        doc_freq: dict[str, int] = {}
        for pieces in tokenized:
            for piece in dict.fromkeys(pieces):
                doc_freq[piece] = doc_freq.get(piece, 0) + 1
        forced = list(dict.fromkeys(p for t in [*always, " ".join(DIGITS)] for p in tokenizer.tokenize(t)))
        ranked = sorted(doc_freq, key=lambda p: -doc_freq[p])  # stable: first-seen order among ties
        if max_pieces is not None:
            ranked = ranked[:max_pieces]
        pieces = list(SPECIALS) + list(dict.fromkeys([*forced, *ranked]))
        return cls(pieces, tokenizer)

    def tokenize(self, text: str) -> list[str]:
        if self.tokenizer is None:
            raise RuntimeError("PieceVocab: no tokenizer attached (load one with load_tokenizer)")
        return self.tokenizer.tokenize(text)

    def encode(self, text: str, max_tokens: int | None = None) -> list[int]:
        ids = [self.index.get(p, UNK) for p in self.tokenize(text)]
        return ids[:max_tokens] if max_tokens is not None else ids

    def encode_many(self, texts: list[str], max_tokens: int | None = None) -> list[list[int]]:
        """:meth:`encode` of many texts through the fast tokenizer's batch path."""
        return self.lookup(tokenize_many(self.tokenizer, texts), max_tokens)

    def lookup(self, tokenized: list[list[str]], max_tokens: int | None = None) -> list[list[int]]:
        """Compact ids of texts already split into pieces."""
        return [[self.index.get(p, UNK) for p in pieces][:max_tokens] for pieces in tokenized]

    def wordlike(self) -> list[bool]:
        """Per piece: holds a letter or digit (ID tokens are words, not punctuation)."""
        return [i >= len(SPECIALS) and any(ch.isalnum() for ch in p) for i, p in enumerate(self.pieces)]

    def continuation(self) -> list[bool]:
        """Per piece: continues a word (``##...``), so it cannot open an ID."""
        return [p.startswith("##") for p in self.pieces]

    def decode(self, ids: Iterable[int]) -> str:
        """Pieces joined into words (``##`` continuations glued on); stops at ``[END]``."""
        words: list[str] = []
        for i in ids:
            i = int(i)
            if i == END:
                break
            piece = self.pieces[i]
            if piece.startswith("##") and words:
                words[-1] += piece[2:]
            else:
                words.append(piece)
        return " ".join(words)


def tokenize_many(tokenizer: Any, texts: list[str]) -> list[list[str]]:
    """Word pieces of many texts at once (the Rust tokenizer's batch path; ~50x faster than a loop)."""
    if not texts:
        return []
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    names = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return [[names[i] for i in row] for row in encoded]


def prompt_vocab(tokenizer: Any, texts: Iterable[str], separator: str) -> PieceVocab:
    """The pieces of the prompt texts (the templates around ``{history}``) and ``separator`` only, plus
    the specials and digits every :class:`PieceVocab` holds: the prompt words for an identifier
    without word pieces of its own."""
    return PieceVocab.build(tokenizer, texts, always=(separator,))
