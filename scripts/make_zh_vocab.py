#!/usr/bin/env python3
"""Build the WordPiece vocabulary of the Chinese (and English) query tower
`models/glimpse-shapes-zh`, with the `tokenizers` package, saved as `transformers` saves a
`DistilBertTokenizer`: `tokenizer.json` + `tokenizer_config.json`.

No real multilingual vocabulary can be downloaded here, so this one is trained on the
captions of the synthetic pictures the tower is distilled on (`glimpse_synth`: the `train`
example's training set, 12 000 specs with seed 7, each caption in English and in Chinese):

* normaliser: `BertNormalizer` (clean text, **Chinese characters split into single-character
  words** — `handle_chinese_chars` —, lower-cased, accents stripped: an *uncased* BERT
  vocabulary, so "A Red Circle" and "a red circle" are the same query);
* pre-tokeniser: `BertPreTokenizer` (whitespace and punctuation, the Chinese full-width
  comma included);
* model: `WordPiece` trained by `WordPieceTrainer` (specials `[PAD]` 0, `[UNK]` 1, `[CLS]` 2,
  `[SEP]` 3, `[MASK]` 4; continuing-subword prefix `##`);
* post-processor: `TemplateProcessing` `[CLS] $A [SEP]` (pairs `[CLS] $A [SEP] $B:1 [SEP]:1`).

The tokenizer is then wrapped in `transformers.DistilBertTokenizer` (tokenizers-backed) and
saved with `save_pretrained`, loaded back with `AutoTokenizer`, and checked: the ids of every
caption are the same through `tokenizers` and through the reloaded `transformers` tokenizer,
and no Chinese or English caption has an `[UNK]`.

Usage (the captions come from `cargo run -p glimpse-synth --example captions`, or a file):

    python scripts/make_zh_vocab.py --out target/glimpse-zh-vocab
    python scripts/make_zh_vocab.py --captions captions.tsv --out DIR --vocab-size 400

Requires: tokenizers, transformers (versions pinned below, as on this project's machines).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PINNED = {"transformers": "5.24.0", "tokenizers": "0.23.3"}
# The longest input the tower takes (its position table): captions have at most ~30 ids.
MAX_LENGTH = 64


def read_captions(path: Path | None, n: int, seed: int) -> list[tuple[str, str]]:
    """(English, Chinese) caption pairs, from a TSV file or from the synth crate's example."""
    if path is not None:
        text = path.read_text(encoding="utf-8")
    else:
        cmd = ["cargo", "run", "-q", "-p", "glimpse-synth", "--example", "captions", "--",
               str(n), str(seed)]
        print("running:", " ".join(cmd), file=sys.stderr)
        text = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True,
                              text=True).stdout
    pairs = []
    for line in text.splitlines():
        if line.strip():
            en, zh = line.split("\t")
            pairs.append((en, zh))
    return pairs


def build(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, continuing_subword_prefix="##"
    )
    tok.train_from_iterator(texts, trainer=trainer)
    ids = [tok.token_to_id(t) for t in SPECIALS]
    assert ids == [0, 1, 2, 3, 4], ids
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return tok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "target/glimpse-zh-vocab")
    ap.add_argument("--captions", type=Path, help="english<TAB>chinese lines (else generated)")
    ap.add_argument("--specs", type=int, default=12000, help="specs to caption (generated)")
    ap.add_argument("--seed", type=int, default=7, help="seed of the specs and captions")
    ap.add_argument("--vocab-size", type=int, default=400)
    args = ap.parse_args()
    for pkg, want in PINNED.items():
        have = importlib.metadata.version(pkg)
        if have != want:
            print(f"WARNING: {pkg} {have} installed, {want} pinned", file=sys.stderr)

    pairs = read_captions(args.captions, args.specs, args.seed)
    texts = [t for pair in pairs for t in pair]
    tok = build(texts, args.vocab_size)

    from transformers import AutoTokenizer, DistilBertTokenizer

    hf = DistilBertTokenizer(tokenizer_object=tok, model_max_length=MAX_LENGTH,
                             do_lower_case=True)
    args.out.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(str(args.out))
    for extra in ["special_tokens_map.json", "vocab.txt"]:
        (args.out / extra).unlink(missing_ok=True)  # tokenizer.json is the one Glimpse reads

    # Checks: the reloaded transformers tokenizer gives tokenizers' ids; nothing is unknown.
    back = AutoTokenizer.from_pretrained(str(args.out))
    sample = texts[:2000]
    want = [e.ids for e in tok.encode_batch(sample)]
    got = back(sample)["input_ids"]
    assert want == got, "transformers and tokenizers disagree"
    unknown = [t for t, ids in zip(texts, (e.ids for e in tok.encode_batch(texts))) if 1 in ids]
    assert not unknown, f"[UNK] in {unknown[:5]}"
    saved = json.loads((args.out / "tokenizer.json").read_text(encoding="utf-8"))
    assert saved["normalizer"]["handle_chinese_chars"] and saved["normalizer"]["lowercase"]
    longest = max(len(e.ids) for e in tok.encode_batch(texts))
    chinese = sum(1 for t in tok.get_vocab() if any("\u4e00" <= c <= "\u9fff" for c in t))
    print(f"{len(pairs)} caption pairs, vocabulary {tok.get_vocab_size()} "
          f"({chinese} Chinese characters), longest caption {longest} ids, in {args.out}")
    print("example:", pairs[0][1], "->", tok.encode(pairs[0][1]).tokens)
    print("example:", pairs[0][0], "->", tok.encode(pairs[0][0]).tokens)


if __name__ == "__main__":
    main()
