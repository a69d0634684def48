#!/usr/bin/env python3
"""Create the BERT-family and Chinese-CLIP parity fixtures for `glimpse-encoder`.

Writes, with seeded random weights and in exact Hugging Face layout, under
``crates/encoder/tests/fixtures/chinese_clip/``:

* ``tiny-bert/``        a tiny ``BertModel`` (with its pooler, which Glimpse skips)
* ``tiny-distilbert/``  a tiny ``DistilBertModel``
* ``reference-bert.safetensors`` + ``reference-bert.json``: ``last_hidden_state`` of both for a
  right-padded batch (attention mask, token types for BERT)
* ``tiny-chinese-clip/`` a tiny ``ChineseCLIPModel`` (config.json, model.safetensors,
  preprocessor_config.json, tokenizer.json, tokenizer_config.json)
* ``reference.safetensors`` + ``reference.json``: token ids, pixel values and image and text
  embeddings from transformers

and, with ``--full [DIR]``, a full-size random checkpoint with
OFA-Sys/chinese-clip-vit-base-patch16's shapes (ViT-B/16 + RoBERTa-wwm-base: vocabulary 21128)
and its reference embeddings in ``DIR/reference/`` (not committed).

The reference is transformers' ``ChineseCLIPModel`` (``get_text_features`` /
``get_image_features``), ``BertModel``, ``DistilBertModel``, ``ChineseCLIPImageProcessorPil``
and ``BertTokenizer`` (the tokenizers-backed class) loaded back from the saved files with
``AutoTokenizer.from_pretrained``.

No real Chinese-CLIP vocabulary can be had here, so the tokenizer is a **WordPiece** vocabulary
trained with the ``tokenizers`` package on fixture text (English, Chinese, Japanese, Korean,
Greek, Russian, accents, emoji ...), BertWordPieceTokenizer-style: ``BertNormalizer``
(``clean_text``, ``handle_chinese_chars``, lowercase), ``BertPreTokenizer``, ``WordPiece`` with
``##`` continuations, ``[CLS] $A [SEP]``; the vocabulary is then handed to transformers'
``BertTokenizer(vocab=...)``, which builds the same pipeline a ``vocab.txt`` checkpoint gets, and
saved with ``save_pretrained``.

Usage:
    python scripts/make_chinese_clip_fixtures.py                # committed fixtures
    python scripts/make_chinese_clip_fixtures.py --full [DIR]   # also the full-size one
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import FIXTURES, TEXTS, check_versions  # noqa: E402

SEED = 20261130
OUT = FIXTURES / "chinese_clip"
DEFAULT_FULL_DIR = Path("/root/.cache/glimpse/chinese-clip-base-random")
TINY_POSITIONS = 40
IMAGE = 48

CORPUS = TEXTS + [
    "a photo of a cat sitting on a red sofa",
    "a photo of two dogs playing in the snow",
    "a bowl of noodles with chopsticks on a wooden table",
    "sunset over the sea with a sailing boat",
    "一只猫坐在红色的沙发上",
    "两只狗在雪地里玩耍",
    "木桌上放着一碗面条和筷子",
    "海上的日落和一艘帆船",
    "一张猫的照片",
    "一张狗的照片",
    "红色的汽车停在路边",
    "赤いソファに座っている猫の写真",
    "눈 속에서 노는 두 마리의 개",
    "ένα σκυλί που παίζει στο χιόνι",
    "кошка сидит на красном диване",
]

EXTRA_TEXTS = [
    "一只猫坐在红色的沙发上",
    "一张狗的照片",
    "杰尼龟，妙蛙种子，小火龙，皮卡丘",  # characters the vocabulary never saw: [UNK]
    "a photo of a 猫 on the 沙发 (mixed 中英文 text)",
    "Ｃｈｉｎｅｓｅ　ＣＬＩＰ：全角字符与标点！",
    "一只猫坐在红色的沙发上，" * 6,  # truncated at the context
    "literal [MASK] and [CLS] special tokens [SEP] in text",
]


def build_tokenizer(directory: Path, committed: str | None, max_length: int):
    """Train the WordPiece vocabulary (or reuse the committed one: training is not
    bit-reproducible across tokenizers versions) and save it with transformers."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, trainers
    from tokenizers.models import WordPiece
    from transformers import AutoTokenizer, BertTokenizer

    if committed is not None:
        vocab = json.loads(committed)["model"]["vocab"]
    else:
        tok = Tokenizer(WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
        )
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordPieceTrainer(
            vocab_size=600,
            special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
            continuing_subword_prefix="##",
        )
        tok.train_from_iterator(CORPUS * 3, trainer=trainer)
        vocab = tok.get_vocab()
    assert vocab["[PAD]"] == 0 and vocab["[CLS]"] == 2 and vocab["[SEP]"] == 3
    fast = BertTokenizer(vocab=dict(vocab), do_lower_case=True, model_max_length=max_length)
    fast.save_pretrained(directory)
    loaded = AutoTokenizer.from_pretrained(directory)
    assert type(loaded).__name__ == "BertTokenizer", type(loaded)
    assert loaded.pad_token_id == 0
    # The same vocabulary as a `vocab.txt` checkpoint (no tokenizer.json), as many BERT and
    # Chinese-CLIP repositories ship it: transformers builds the pipeline from it.
    vocab_dir = OUT / "vocab-txt"
    if vocab_dir.exists():
        shutil.rmtree(vocab_dir)
    vocab_dir.mkdir(parents=True)
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    assert [i for _, i in by_id] == list(range(len(by_id)))
    (vocab_dir / "vocab.txt").write_text("".join(t + "\n" for t, _ in by_id), encoding="utf-8")
    shutil.copy(directory / "tokenizer_config.json", vocab_dir / "tokenizer_config.json")
    from_vocab = BertTokenizer.from_pretrained(vocab_dir)
    for text in TEXTS + EXTRA_TEXTS:
        a = loaded(text, truncation=True, max_length=max_length)["input_ids"]
        b = from_vocab(text, truncation=True, max_length=max_length)["input_ids"]
        assert a == b, (text, a, b)
    return loaded


def widen_init(model, seed: int) -> None:
    """Wide random init (as make_fixtures.py does for CLIP): embeddings well spread."""
    import torch

    g = torch.Generator().manual_seed(seed)

    def randn(shape, std):
        return torch.randn(shape, generator=g, dtype=torch.float32) * std

    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            shape = tuple(p.shape)
            low = name.lower()
            if name == "logit_scale":
                p.copy_(torch.tensor(math.log(20.0)))
            elif any(k in low for k in ("layernorm", "layer_norm", "layrnorm")):
                p.copy_(1.0 + randn(shape, 0.2) if name.endswith("weight") else randn(shape, 0.1))
            elif name.endswith("bias"):
                p.copy_(randn(shape, 0.1))
            elif name.endswith("class_embedding"):
                p.copy_(randn(shape, 1.0))
            elif "embedding" in name:
                if p.dim() == 4:
                    fan_in = shape[1] * shape[2] * shape[3]
                    p.copy_(randn(shape, 2.0 / math.sqrt(fan_in)))
                else:
                    p.copy_(randn(shape, 0.5))
            elif p.dim() == 2:
                p.copy_(randn(shape, 1.2 / math.sqrt(shape[1])))
            else:
                raise RuntimeError(f"unhandled parameter {name} {shape}")
        # The padding row of a `padding_idx` embedding is zero in a trained checkpoint (it never
        # gets a gradient), and `from_pretrained` zeroes it on load: keep file and model equal.
        for module in model.modules():
            if isinstance(module, torch.nn.Embedding) and module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()


def save_and_reload(cls, model, directory: Path, extra=()):
    import torch

    model.save_pretrained(directory, safe_serialization=True)
    for e in extra:
        e.save_pretrained(directory)
    reloaded = cls.from_pretrained(directory).eval()
    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), reloaded.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2), n1
    return reloaded


def make_bert(versions: dict, vocab: int) -> None:
    """Tiny BertModel and DistilBertModel and their last hidden states."""
    import numpy as np
    import torch
    from safetensors.numpy import save_file
    from transformers import BertConfig, BertModel, DistilBertConfig, DistilBertModel

    ids = [
        [2, 17, 45, 99, 3],
        [2, 250, 3],
        [2, 7, 8, 9, 10, 11, 12, 13, 3],
        [2, 3],
    ]
    types = [[0, 0, 0, 1, 1], [0, 1, 1], [0, 0, 0, 0, 0, 1, 1, 1, 1], [0, 1]]
    seq = max(len(r) for r in ids)
    pad = lambda rows: [r + [0] * (seq - len(r)) for r in rows]  # noqa: E731
    mask = [[1] * len(r) + [0] * (seq - len(r)) for r in ids]
    tensors = {}
    meta_models = {}
    for name, cls, config in [
        ("tiny-bert", BertModel, BertConfig(
            vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, max_position_embeddings=TINY_POSITIONS, type_vocab_size=2,
            hidden_act="gelu", layer_norm_eps=1e-12)),
        ("tiny-distilbert", DistilBertModel, DistilBertConfig(
            vocab_size=vocab, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
            max_position_embeddings=TINY_POSITIONS, activation="gelu")),
    ]:
        torch.manual_seed(SEED)
        model = cls(config).eval()
        widen_init(model, SEED + 7)
        directory = OUT / name
        if directory.exists():
            shutil.rmtree(directory)
        model = save_and_reload(cls, model, directory)
        kwargs = dict(input_ids=torch.tensor(pad(ids)), attention_mask=torch.tensor(mask))
        if cls is BertModel:
            kwargs["token_type_ids"] = torch.tensor(pad(types))
        with torch.no_grad():
            hidden = model(**kwargs).last_hidden_state.numpy().astype(np.float32)
            # Each sequence alone, unpadded: padding must not change the real positions.
            for i, row in enumerate(ids):
                alone = dict(input_ids=torch.tensor([row]))
                if cls is BertModel:
                    alone["token_type_ids"] = torch.tensor([types[i]])
                h1 = model(**alone).last_hidden_state[0].numpy()
                assert np.abs(h1 - hidden[i, : len(row)]).max() < 1e-4, name
        tensors[f"{name}.last_hidden_state"] = hidden
        meta_models[name] = {"class": cls.__name__, "shape": list(hidden.shape)}
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
              OUT / "reference-bert.safetensors",
              metadata={"generator": "scripts/make_chinese_clip_fixtures.py"})
    (OUT / "reference-bert.json").write_text(json.dumps({
        "generator": "scripts/make_chinese_clip_fixtures.py",
        "versions": versions,
        "reference": "transformers BertModel / DistilBertModel last_hidden_state, right-padded "
                     "batch with attention_mask (token_type_ids for BERT)",
        "ids": ids, "token_type_ids": types, "attention_mask": mask,
        "models": meta_models,
    }, indent=1) + "\n")


def tiny_config(vocab: int):
    from transformers import ChineseCLIPConfig

    text = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=TINY_POSITIONS, type_vocab_size=2,
                hidden_act="gelu", layer_norm_eps=1e-12)
    vision = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, image_size=IMAGE, patch_size=8, num_channels=3,
                  hidden_act="quick_gelu", layer_norm_eps=1e-5)
    return ChineseCLIPConfig(text_config=text, vision_config=vision, projection_dim=40)


def full_config():
    """OFA-Sys/chinese-clip-vit-base-patch16's shapes: RoBERTa-wwm-ext-base-chinese text tower
    (vocabulary 21128), ViT-B/16 image tower, 512-d projection."""
    from transformers import ChineseCLIPConfig

    text = dict(vocab_size=21128, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                num_attention_heads=12, max_position_embeddings=512, type_vocab_size=2,
                hidden_act="gelu", layer_norm_eps=1e-12)
    vision = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                  num_attention_heads=12, image_size=224, patch_size=16, hidden_act="quick_gelu",
                  layer_norm_eps=1e-5)
    return ChineseCLIPConfig(text_config=text, vision_config=vision, projection_dim=512)


def processor(size: int):
    from transformers.models.chinese_clip.image_processing_pil_chinese_clip import (
        ChineseCLIPImageProcessorPil,
    )

    # As Chinese-CLIP's checkpoints configure it: a fixed size, no centre crop.
    return ChineseCLIPImageProcessorPil(size={"height": size, "width": size},
                                        do_center_crop=False,
                                        crop_size={"height": size, "width": size})


def pixel_values(proc, path: Path):
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        out = proc(images=im, return_tensors="np")["pixel_values"]
    assert out.dtype == np.float32 and out.shape[0] == 1
    return out[0]


def tokenize(tok, texts, max_length):
    enc = tok(texts, truncation=True, max_length=max_length)
    return enc["input_ids"], enc["token_type_ids"]


def embed(model, pixels, tok, texts, max_length):
    import torch

    out = {}
    with torch.no_grad():
        if pixels is not None:
            img = model.get_image_features(pixel_values=torch.from_numpy(pixels)).pooler_output
            out["image"] = img / img.norm(dim=-1, keepdim=True)
        if texts is not None:
            # As ChineseCLIPProcessor(text=..., padding=True) feeds the model.
            enc = tok(texts, padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt")
            txt = model.get_text_features(**enc).pooler_output
            out["text"] = txt / txt.norm(dim=-1, keepdim=True)
    return out


def make_committed(versions: dict, retrain: bool) -> None:
    import numpy as np
    import torch
    from safetensors.numpy import save_file
    from transformers import ChineseCLIPModel

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    directory = OUT / "tiny-chinese-clip"
    committed = None
    if (directory / "tokenizer.json").exists() and not retrain:
        committed = (directory / "tokenizer.json").read_text()
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    tok = build_tokenizer(directory, committed, TINY_POSITIONS)
    vocab = len(tok)
    make_bert(versions, vocab)
    proc = processor(IMAGE)
    torch.manual_seed(SEED)
    model = ChineseCLIPModel(tiny_config(vocab)).eval()
    widen_init(model, SEED)
    model = save_and_reload(ChineseCLIPModel, model, directory, extra=[proc])
    keys = set(model.state_dict().keys())
    assert "text_projection.weight" in keys and not any(".pooler." in k for k in keys)

    ref_clip = json.loads((FIXTURES / "reference" / "reference.json").read_text())
    images = ref_clip["images"]
    texts = TEXTS + EXTRA_TEXTS
    ids, types = tokenize(tok, texts, TINY_POSITIONS)
    assert max(len(r) for r in ids) == TINY_POSITIONS
    tensors = {}
    names = [s["name"] for s in images]
    for s in images:
        tensors[f"pixel_values.{s['name']}"] = pixel_values(proc, FIXTURES / s["file"])
    batch = np.stack([tensors[f"pixel_values.{n}"] for n in names])
    e = embed(model, batch, tok, texts, TINY_POSITIONS)
    for i, n in enumerate(names):
        tensors[f"image_embeds.{n}"] = e["image"][i].numpy()
    for i in range(len(texts)):
        tensors[f"text_embeds.{i}"] = e["text"][i].numpy()
    tensors["logit_scale"] = model.logit_scale.detach().numpy().reshape(1).astype(np.float32)
    sims = (e["image"] @ e["image"].T).numpy()
    off = sims[~np.eye(len(names), dtype=bool)]
    tsims = (e["text"] @ e["text"].T).numpy()
    toff = tsims[~np.eye(len(texts), dtype=bool)]
    spread = {
        "image_cosine_offdiag": [float(off.min()), float(off.mean()), float(off.max())],
        "text_cosine_offdiag": [float(toff.min()), float(toff.mean()), float(toff.max())],
    }
    print(spread)
    assert off.mean() < 0.95 and toff.mean() < 0.95, spread
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
              OUT / "reference.safetensors",
              metadata={"generator": "scripts/make_chinese_clip_fixtures.py"})
    meta = {
        "generator": "scripts/make_chinese_clip_fixtures.py",
        "versions": versions,
        "seed": SEED,
        "reference": {
            "model": "transformers.ChineseCLIPModel (get_image_features / get_text_features), "
                     "texts batched with padding=True and the attention mask",
            "tokenizer": "AutoTokenizer (BertTokenizer, tokenizers backend) on "
                         "tiny-chinese-clip/tokenizer.json, truncation=True, max_length=40",
            "image_processor": "transformers ChineseCLIPImageProcessorPil, size 48x48, "
                               "no centre crop",
        },
        "checkpoint": "tiny-chinese-clip",
        "images": [{"name": s["name"], "file": s["file"]} for s in images],
        "texts": [{"text": t, "ids": row, "token_type_ids": ty}
                  for t, row, ty in zip(texts, ids, types)],
        "embedding_spread": spread,
    }
    (OUT / "reference.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")


def make_full(args, versions: dict) -> None:
    import numpy as np
    import torch
    from safetensors.numpy import save_file
    from transformers import AutoTokenizer, ChineseCLIPModel

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    directory = Path(args.full)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    tiny = OUT / "tiny-chinese-clip"
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny / f, directory / f)
    # The tiny tokenizer's model_max_length (40) would truncate; the full model takes 512.
    cfg = json.loads((directory / "tokenizer_config.json").read_text())
    cfg["model_max_length"] = 512
    (directory / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    tok = AutoTokenizer.from_pretrained(directory)
    proc = processor(224)
    torch.manual_seed(SEED + 1)
    model = ChineseCLIPModel(full_config()).eval()
    widen_init(model, SEED + 1)
    model = save_and_reload(ChineseCLIPModel, model, directory, extra=[proc])
    ref = json.loads((OUT / "reference.json").read_text())
    pix = np.stack([pixel_values(proc, FIXTURES / s["file"]) for s in ref["images"]])
    texts = [t["text"] for t in ref["texts"]]
    texts = texts[:4] + texts[-6:]
    ids, _ = tokenize(tok, texts, 512)
    e = embed(model, pix, tok, texts, 512)
    tensors = {}
    for i, s in enumerate(ref["images"]):
        tensors[f"image_embeds.{s['name']}"] = e["image"][i].numpy()
    for i in range(len(texts)):
        tensors[f"text_embeds.{i}"] = e["text"][i].numpy()
    out = directory / "reference"
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
              out / "reference.safetensors")
    (out / "reference.json").write_text(json.dumps({
        "versions": versions, "seed": SEED + 1,
        "images": [{"name": s["name"], "file": str(FIXTURES / s["file"])} for s in ref["images"]],
        "texts": [{"text": t, "ids": row} for t, row in zip(texts, ids)],
    }, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote full-size random Chinese-CLIP ViT-B/16 to {directory}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", nargs="?", const=str(DEFAULT_FULL_DIR), default=None)
    ap.add_argument("--skip-committed", action="store_true")
    ap.add_argument("--retrain-tokenizer", action="store_true",
                    help="train a new vocabulary instead of reusing the committed tokenizer.json")
    ap.add_argument("--allow-version-mismatch", action="store_true")
    args = ap.parse_args()
    versions = check_versions(args.allow_version_mismatch)
    if not args.skip_committed:
        make_committed(versions, args.retrain_tokenizer)
    if args.full:
        make_full(args, versions)


if __name__ == "__main__":
    main()
