#!/usr/bin/env python3
"""Create the sentence-transformers query-tower fixtures for `glimpse-encoder`.

Writes, with seeded random weights, in the exact layout ``SentenceTransformer.save()`` writes
(``modules.json``, ``config_sentence_transformers.json``, the Transformer in the root —
``config.json``, ``model.safetensors``, ``tokenizer.json``, ``tokenizer_config.json``,
``sentence_bert_config.json`` —, ``1_Pooling/config.json``, ``2_Dense/config.json`` +
``2_Dense/model.safetensors``):

* ``crates/encoder/tests/fixtures/sentence/tiny-distilbert/``: ``DistilBertModel`` (the
  architecture of ``sentence-transformers/clip-ViT-B-32-multilingual-v1``), mean pooling,
  Dense 32 → 24 without bias, Identity activation, ``max_seq_length`` 24 (so long texts are
  truncated), and a ``glimpse_query_tower.json`` declaring ``tiny-clip`` (whose embeddings
  have 24 dimensions) as its image model;
* ``crates/encoder/tests/fixtures/sentence/tiny-bert/``: ``BertModel`` (token type
  embeddings, a pooler the sentence embedding does not use), **cls** pooling, Dense 32 → 16
  with bias, ``max_seq_length`` 64, and a model card naming ``clip-ViT-B-32`` the way the
  sentence-transformers cards do (no ``glimpse_query_tower.json``);
* ``crates/encoder/tests/fixtures/sentence/reference.json``: for each model, the texts, the
  token ids ``SentenceTransformer.tokenize`` gives (unpadded) and ``encode()``'s embeddings
  (not normalised: the models have no Normalize module).

and, with ``--full DIR``, a random checkpoint with the sizes of
``sentence-transformers/clip-ViT-B-32-multilingual-v1`` (multilingual DistilBERT: vocabulary
119 547, width 768, 6 layers, 12 heads, 512 positions; mean pooling; Dense 768 → 512 without
bias; ``max_seq_length`` 128) and its reference in ``DIR/reference.json`` (not committed;
~540 MB).

The reference is sentence-transformers itself: the model is built from its modules, saved with
``save()``, loaded back with ``SentenceTransformer(dir)`` — what a user does with a downloaded
repository — and that model's ``tokenize`` / ``encode`` give the reference.

No real multilingual vocabulary can be downloaded here, so the tokenizer is a BERT-style
**WordPiece** model trained with the ``tokenizers`` package on fixture text in several
languages (Chinese, Japanese, Korean, Greek, Russian, Arabic, accented Latin): BERT's
normaliser (clean text, Chinese characters split, cased, accents kept — as
``bert-base-multilingual-cased``, the vocabulary of the multilingual DistilBERT),
``BertPreTokenizer``, ``[CLS] $A [SEP]``, ``[PAD]`` = 0, saved by ``transformers``'
``DistilBertTokenizer`` / ``BertTokenizer`` (tokenizers-backed) and loaded back by
sentence-transformers.

The committed ``tokenizer.json`` is reused when present (``--retrain-tokenizer`` trains a new
one): the WordPiece trainer's vocabulary order differs between runs; everything else is seeded
and comes out byte-identical.

Usage:
    python scripts/make_sentence_fixtures.py              # committed fixtures
    python scripts/make_sentence_fixtures.py --full DIR   # also the full-size one
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/encoder/tests/fixtures/sentence"
SEED = 20261129

PINNED = {
    "sentence-transformers": "6.2.0",
    "transformers": "5.24.0",
    "tokenizers": "0.23.3",
    "torch": "2.15.0",
}

CORPUS = [
    "a photo of a cat sitting on a red sofa",
    "a photo of two dogs playing in the snow",
    "a bowl of noodles with chopsticks on a wooden table",
    "sunset over the sea with a sailing boat",
    "a small red circle at the top left on a striped background",
    "a big blue square in the centre on a plain background",
    "一只猫坐在红色的沙发上",
    "两只狗在雪地里玩耍",
    "木桌上放着一碗面条和筷子",
    "海上的日落和一艘帆船",
    "条纹背景左上角的一个红色小圆",
    "赤いソファに座っている猫の写真",
    "눈 속에서 노는 두 마리의 개",
    "ένα σκυλί που παίζει στο χιόνι",
    "кошка сидит на красном диване",
    "قطة تجلس على أريكة حمراء",
    "un chat assis sur un canapé rouge, crème brûlée",
    "ein Hund spielt im Schnee, Straße und Größe",
]

TEXTS = [
    "a photo of a cat",
    "A Photo Of A CAT",
    "一只猫坐在红色的沙发上",
    "条纹背景左上角的一个红色小圆",
    "赤いソファに座っている猫の写真",
    "눈 속에서 노는 두 마리의 개",
    "кошка сидит на красном диване",
    "ένα σκυλί που παίζει στο χιόνι",
    "قطة تجلس على أريكة حمراء",
    "café crème brûlée, naïve façade, Ångström",
    "e\u0301cole (decomposed accent)",
    "emoji 🐱🐶 and unknown words: xylophone quixotic zephyr",
    "   leading and trailing spaces   ",
    "repeated    whitespace\t\tand\nnewlines",
    "punctuation!!! ??? (parens) [brackets] @user #hashtag",
    "numbers 1234567890 and 3.14159",
    "",
    " ".join(["a photo of two dogs playing in the snow"] * 8),
    "猫" * 80,
]

CARD = """---
library_name: sentence-transformers
pipeline_tag: sentence-similarity
---

# tiny-bert (a random-weight fixture)

A multilingual text model trained into the image space of CLIP ViT-B/32 (random weights: a
fixture in the layout of sentence-transformers' multilingual CLIP models).

```python
from sentence_transformers import SentenceTransformer

img_model = SentenceTransformer('clip-ViT-B-32')
text_model = SentenceTransformer('sentence-transformers/clip-ViT-B-32-multilingual-v1')
```
"""


def check_versions(allow_mismatch: bool) -> dict:
    found, bad = {}, []
    for pkg, want in PINNED.items():
        have = importlib.metadata.version(pkg)
        found[pkg] = have
        if have != want:
            bad.append(f"{pkg}: pinned {want}, installed {have}")
    if bad:
        msg = "version mismatch:\n  " + "\n  ".join(bad)
        if not allow_mismatch:
            sys.exit(msg + "\n(re-run with --allow-version-mismatch to proceed anyway)")
        print("WARNING: " + msg, file=sys.stderr)
    return found


def build_wordpiece(vocab_size: int):
    """A BERT-style cased WordPiece tokenizer trained on CORPUS (+ the fixture texts)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        continuing_subword_prefix="##",
    )
    tok.train_from_iterator((CORPUS + TEXTS[:12]) * 3, trainer=trainer)
    ids = {t: tok.token_to_id(t) for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]}
    assert list(ids.values()) == [0, 1, 2, 3, 4], ids
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return tok


def wrap_tokenizer(tok, kind: str, max_length: int):
    from transformers import BertTokenizer, DistilBertTokenizer

    cls = DistilBertTokenizer if kind == "distilbert" else BertTokenizer
    return cls(tokenizer_object=tok, model_max_length=max_length, do_lower_case=False)


def widen_init(model, seed: int) -> None:
    """Wide random init: the default std-0.02 init makes every text's embedding nearly the
    same direction, which would hide a wrong layer."""
    import torch

    g = torch.Generator().manual_seed(seed)

    def randn(shape, std):
        return torch.randn(shape, generator=g, dtype=torch.float32) * std

    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            shape = tuple(p.shape)
            if "LayerNorm" in name or "layer_norm" in name:
                p.copy_(1.0 + randn(shape, 0.2) if name.endswith("weight") else randn(shape, 0.1))
            elif name.endswith("bias"):
                p.copy_(randn(shape, 0.1))
            elif "embeddings" in name:
                p.copy_(randn(shape, 0.5))
            elif p.dim() == 2:
                p.copy_(randn(shape, 1.2 / math.sqrt(shape[1])))
            else:
                raise RuntimeError(f"unhandled parameter {name} {shape}")


def build(kind: str, sizes: dict, tok, seed: int, pooling: str, dense_out: int, bias: bool,
          max_seq_length: int, directory: Path):
    """Builds the sentence-transformers model, saves it to `directory` with `save()`, and
    returns it loaded back from there."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Pooling, Transformer
    from transformers import BertConfig, BertModel, DistilBertConfig, DistilBertModel

    torch.manual_seed(seed)
    if kind == "distilbert":
        config = DistilBertConfig(
            vocab_size=sizes["vocab"], dim=sizes["hidden"], n_layers=sizes["layers"],
            n_heads=sizes["heads"], hidden_dim=sizes["ffn"],
            max_position_embeddings=sizes["positions"], activation="gelu",
        )
        model = DistilBertModel(config)
    else:
        config = BertConfig(
            vocab_size=sizes["vocab"], hidden_size=sizes["hidden"],
            num_hidden_layers=sizes["layers"], num_attention_heads=sizes["heads"],
            intermediate_size=sizes["ffn"], max_position_embeddings=sizes["positions"],
            type_vocab_size=2, hidden_act="gelu", layer_norm_eps=1e-12,
        )
        model = BertModel(config)
    model.eval()
    widen_init(model, seed)
    hf = wrap_tokenizer(tok, kind, max_seq_length)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        hf.save_pretrained(tmp)
        transformer = Transformer(tmp, max_seq_length=max_seq_length)
    d = sizes["hidden"]
    pool = Pooling(d, pooling_mode=pooling)
    g = torch.Generator().manual_seed(seed + 1)
    weight = torch.randn((dense_out, d), generator=g) * (1.0 / math.sqrt(d))
    init_bias = torch.randn((dense_out,), generator=g) * 0.1 if bias else None
    dense = Dense(d, dense_out, bias=bias, activation_function=torch.nn.Identity(),
                  init_weight=weight, init_bias=init_bias)
    st = SentenceTransformer(modules=[transformer, pool, dense], device="cpu")
    if directory.exists():
        shutil.rmtree(directory)
    st.save(str(directory))
    return SentenceTransformer(str(directory), device="cpu")


def reference(st, texts):
    """Token ids (unpadded, as sentence-transformers tokenizes) and encode()'s embeddings."""
    import numpy as np

    features = st.tokenize(texts)
    ids = [
        [int(i) for i, m in zip(row, mask) if m]
        for row, mask in zip(features["input_ids"].tolist(), features["attention_mask"].tolist())
    ]
    emb = st.encode(texts, batch_size=8, convert_to_numpy=True, normalize_embeddings=False)
    assert emb.dtype == np.float32
    return ids, [[float(x) for x in row] for row in emb]


def tidy(directory: Path) -> None:
    """Drop what save() writes that the fixture does not need to be loaded (the generated
    model card is replaced by ours or removed: it embeds version strings and dates)."""
    card = directory / "README.md"
    if card.exists():
        card.unlink()


def committed_tokenizer():
    """The committed WordPiece model: the trainer's vocabulary order is not reproducible
    across runs, so the fixtures keep the tokenizer they were made with."""
    from tokenizers import Tokenizer

    path = OUT / "tiny-distilbert" / "tokenizer.json"
    if not path.exists():
        return None
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.no_truncation()
    return tok


def make_committed(versions: dict, retrain: bool) -> None:
    tok = None if retrain else committed_tokenizer()
    if tok is None:
        tok = build_wordpiece(600)
    vocab = tok.get_vocab_size()
    sizes = dict(vocab=vocab, hidden=32, layers=2, heads=4, ffn=64, positions=64)
    out = {"versions": versions, "models": {}}
    specs = [
        ("tiny-distilbert", "distilbert", "mean", False, 24, 24),
        ("tiny-bert", "bert", "cls", True, 64, 16),
    ]
    for i, (name, kind, pooling, bias, max_len, dims) in enumerate(specs):
        directory = OUT / name
        st = build(kind, sizes, tok, SEED + 10 * i, pooling, dims, bias, max_len, directory)
        tidy(directory)
        if name == "tiny-distilbert":
            (directory / "glimpse_query_tower.json").write_text(
                json.dumps({"image_model": "tiny-clip", "dims": dims}) + "\n"
            )
        else:
            (directory / "README.md").write_text(CARD)
        ids, emb = reference(st, TEXTS)
        out["models"][name] = {
            "architecture": kind,
            "pooling": pooling,
            "max_seq_length": max_len,
            "dims": dims,
            "texts": TEXTS,
            "ids": ids,
            "embeddings": emb,
        }
        print(f"{name}: vocab {vocab}, {sum(len(r) for r in ids)} ids, "
              f"max len {max(len(r) for r in ids)}")
    (OUT / "reference.json").write_text(json.dumps(out, ensure_ascii=False) + "\n")


def make_full(directory: Path, versions: dict) -> None:
    tok = build_wordpiece(2000)
    sizes = dict(vocab=119547, hidden=768, layers=6, heads=12, ffn=3072, positions=512)
    st = build("distilbert", sizes, tok, SEED + 100, "mean", 512, False, 128, directory)
    tidy(directory)
    texts = TEXTS[:4] + [TEXTS[9], TEXTS[17]]
    ids, emb = reference(st, texts)
    ref = {"versions": versions, "texts": texts, "ids": ids, "embeddings": emb}
    (directory / "reference.json").write_text(json.dumps(ref, ensure_ascii=False) + "\n")
    print(f"full-size checkpoint in {directory}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", type=Path, help="also write a full-size random checkpoint here")
    ap.add_argument("--allow-version-mismatch", action="store_true")
    ap.add_argument("--retrain-tokenizer", action="store_true",
                    help="train a new WordPiece vocabulary instead of reusing the committed one")
    args = ap.parse_args()
    versions = check_versions(args.allow_version_mismatch)
    OUT.mkdir(parents=True, exist_ok=True)
    make_committed(versions, args.retrain_tokenizer)
    if args.full:
        make_full(args.full, versions)


if __name__ == "__main__":
    main()
