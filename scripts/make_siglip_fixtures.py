#!/usr/bin/env python3
"""Create the SigLIP parity fixtures for `glimpse-encoder`.

Writes, with seeded random weights and in exact Hugging Face layout:

* ``crates/encoder/tests/fixtures/tiny-siglip/``   tiny ``SiglipModel`` (config.json,
  model.safetensors, preprocessor_config.json, tokenizer.json, tokenizer_config.json)
* ``crates/encoder/tests/fixtures/preprocessor-siglip-224/preprocessor_config.json``
  (only ``image_processor_type``: every setting is ``SiglipImageProcessor``'s class default)
* ``crates/encoder/tests/fixtures/reference-siglip/`` reference.safetensors + reference.json

and, with ``--full [DIR]``, a full-size random ``google/siglip-base-patch16-224``-shaped
checkpoint with reference embeddings in ``DIR/reference/`` (not committed).

The reference implementation is transformers' ``SiglipModel`` (``get_text_features`` /
``get_image_features`` / ``forward`` for the logits), ``SiglipImageProcessorPil`` and the
tokenizers-backed tokenizer loaded from the saved ``tokenizer.json`` with
``AutoTokenizer.from_pretrained``, called as ``SiglipProcessor`` calls it
(``padding="max_length", max_length=64, truncation=True``).

No real SigLIP tokenizer file can be had here (the google/siglip-* repositories ship a
SentencePiece ``spiece.model``; the pip registries carry none), so the tokenizer is a
SentencePiece-style **Unigram** model trained with the ``tokenizers`` package on the fixture
texts (English, Chinese, Japanese, Korean, Greek, Russian, ...): ``Metaspace`` pre-tokenizer,
NFKC normaliser, ``</s>`` appended by the post-processor, ``<pad>`` = 0, ``</s>`` = 1 (SigLIP's
pad token), ``<unk>`` = 2, as in SigLIP's vocabulary.

Usage:
    python scripts/make_siglip_fixtures.py                # committed fixtures
    python scripts/make_siglip_fixtures.py --full [DIR]   # also the full-size one
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path

# One thread in the tokenizer trainer: its parallel sums made the trained scores differ in the
# last digits between runs.
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import FIXTURES, TEXTS, check_versions  # noqa: E402

SEED = 20261129
DEFAULT_FULL_DIR = Path("/root/.cache/glimpse/siglip-base-random")
CONTEXT = 64

# Training text for the tokenizer: the fixture texts plus captions in several languages.
CORPUS = TEXTS + [
    "a photo of a cat sitting on a red sofa",
    "a photo of two dogs playing in the snow",
    "a bowl of noodles with chopsticks on a wooden table",
    "sunset over the sea with a sailing boat",
    "一只猫坐在红色的沙发上",
    "两只狗在雪地里玩耍",
    "木桌上放着一碗面条和筷子",
    "海上的日落和一艘帆船",
    "赤いソファに座っている猫の写真",
    "눈 속에서 노는 두 마리의 개",
    "ένα σκυλί που παίζει στο χιόνι",
    "кошка сидит на красном диване",
]

EXTRA_TEXTS = [
    "一只猫坐在红色的沙发上",
    "a photo of a cat sitting on a red sofa",
    "words the tokenizer never saw: xylophone quixotic zephyr",
]


def build_tokenizer(directory: Path, committed: str | None = None):
    """Train the Unigram tokenizer (or reuse the committed `tokenizer.json`: training is not
    bit-reproducible across runs) and save it with transformers (tokenizer.json + config)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors, trainers
    from transformers import PreTrainedTokenizerFast

    if committed is not None:
        tok = Tokenizer.from_str(committed)
        tok.no_padding()
        tok.no_truncation()
        return save_tokenizer(tok, directory)
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        shrinking_factor=0.75,
    )
    tok.train_from_iterator(CORPUS * 3, trainer=trainer)
    assert tok.token_to_id("<pad>") == 0 and tok.token_to_id("</s>") == 1
    assert tok.token_to_id("<unk>") == 2
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    return save_tokenizer(tok, directory)


def save_tokenizer(tok, directory: Path):
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="</s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=CONTEXT,
    )
    fast.save_pretrained(directory)
    # What users (and the Rust side) load: the saved files.
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(directory)
    assert loaded.pad_token_id == 1, loaded.pad_token_id
    return loaded


def tokenize(tok, texts):
    enc = tok(texts, padding="max_length", max_length=CONTEXT, truncation=True)
    ids = enc["input_ids"]
    assert all(len(row) == CONTEXT for row in ids)
    return ids


def tiny_config(vocab: int):
    from transformers import SiglipConfig

    text = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=CONTEXT,
                hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, projection_size=48)
    vision = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, image_size=60, patch_size=8, num_channels=3,
                  hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6)
    return SiglipConfig(text_config=text, vision_config=vision)


def full_config():
    """google/siglip-base-patch16-224's sizes (the transformers defaults)."""
    from transformers import SiglipConfig

    return SiglipConfig(text_config=dict(vocab_size=32000), vision_config={})


def widen_init(model, seed: int, logit_scale: float, logit_bias: float) -> None:
    """Wide random init (as make_fixtures.py does for CLIP): embeddings well spread."""
    import torch

    g = torch.Generator().manual_seed(seed)

    def randn(shape, std):
        return torch.randn(shape, generator=g, dtype=torch.float32) * std

    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            shape = tuple(p.shape)
            if name == "logit_scale":
                p.copy_(torch.tensor([logit_scale]))
            elif name == "logit_bias":
                p.copy_(torch.tensor([logit_bias]))
            elif "layer_norm" in name or "layernorm" in name:
                p.copy_(1.0 + randn(shape, 0.2) if name.endswith("weight") else randn(shape, 0.1))
            elif name.endswith("bias"):
                p.copy_(randn(shape, 0.1))
            elif name.endswith("probe"):
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


def build_model(config, seed: int, logit_scale: float, logit_bias: float):
    import torch
    from transformers import SiglipModel

    torch.manual_seed(seed)
    model = SiglipModel(config).eval()
    widen_init(model, seed, logit_scale, logit_bias)
    return model


def save_and_reload(model, proc, directory: Path):
    from transformers import SiglipModel

    model.save_pretrained(directory, safe_serialization=True)
    proc.save_pretrained(directory)
    reloaded = SiglipModel.from_pretrained(directory).eval()
    import torch

    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), reloaded.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2), n1
    return reloaded


def pixel_values(proc, path: Path):
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        out = proc(images=im, return_tensors="np")["pixel_values"]
    assert out.dtype == np.float32 and out.shape[0] == 1
    return out[0]


def embed(model, pixels, ids):
    import torch

    with torch.no_grad():
        out = {}
        if pixels is not None:
            img = model.get_image_features(pixel_values=torch.from_numpy(pixels)).pooler_output
            out["image_raw"] = img
            out["image"] = img / img.norm(dim=-1, keepdim=True)
        if ids is not None:
            txt = model.get_text_features(input_ids=torch.tensor(ids)).pooler_output
            out["text_raw"] = txt
            out["text"] = txt / txt.norm(dim=-1, keepdim=True)
        if pixels is not None and ids is not None:
            full = model(input_ids=torch.tensor(ids), pixel_values=torch.from_numpy(pixels))
            out["logits_per_image"] = full.logits_per_image
    return out


def make_committed(versions: dict, retrain: bool) -> None:
    import numpy as np
    import torch
    from safetensors.numpy import save_file
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    directory = FIXTURES / "tiny-siglip"
    committed = None
    if (directory / "tokenizer.json").exists() and not retrain:
        committed = (directory / "tokenizer.json").read_text()
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    tok = build_tokenizer(directory, committed)
    vocab = len(tok)
    # 60 is not a multiple of the patch (8): 7x7 patches, the last 4 pixels dropped by the
    # stride-8 convolution, as So400m/14 at 384 pixels drops 6.
    proc = SiglipImageProcessorPil(size={"height": 60, "width": 60})
    # Calibration like a trained SigLIP's in spirit (negative bias), scaled so that the random
    # cosines give relevances spread over (0, 1).
    model = build_model(tiny_config(vocab), SEED, math.log(10.0), -2.5)
    model = save_and_reload(model, proc, directory)
    proc = SiglipImageProcessorPil.from_pretrained(directory)
    assert proc.backend == "pil" and dict(proc.size) == {"height": 60, "width": 60}

    p224_dir = FIXTURES / "preprocessor-siglip-224"
    p224_dir.mkdir(parents=True, exist_ok=True)
    (p224_dir / "preprocessor_config.json").write_text(
        '{\n  "image_processor_type": "SiglipImageProcessor"\n}\n'
    )
    p224 = SiglipImageProcessorPil.from_pretrained(p224_dir)
    assert dict(p224.size) == {"height": 224, "width": 224}

    ref_clip = json.loads((FIXTURES / "reference" / "reference.json").read_text())
    images = [s for s in ref_clip["images"]]
    texts = TEXTS + EXTRA_TEXTS
    ids = tokenize(tok, texts)
    unpadded = tok(texts, truncation=True, max_length=CONTEXT)["input_ids"]
    tensors = {}
    names = []
    for spec in images:
        names.append(spec["name"])
        tensors[f"pixel_values.{spec['name']}"] = pixel_values(proc, FIXTURES / spec["file"])
    for name in ("photo_rgb", "rgba", "wide_500x333", "tall_rgb", "gray_l"):
        spec = next(s for s in images if s["name"] == name)
        tensors[f"pixel_values_224.{name}"] = pixel_values(p224, FIXTURES / spec["file"])
    batch = np.stack([tensors[f"pixel_values.{n}"] for n in names])
    e = embed(model, batch, ids)
    for i, n in enumerate(names):
        tensors[f"image_embeds.{n}"] = e["image"][i].numpy()
        tensors[f"image_embeds_raw.{n}"] = e["image_raw"][i].numpy()
    for i in range(len(texts)):
        tensors[f"text_embeds.{i}"] = e["text"][i].numpy()
        tensors[f"text_embeds_raw.{i}"] = e["text_raw"][i].numpy()
    tensors["logit_scale"] = model.logit_scale.detach().numpy().astype(np.float32)
    tensors["logit_bias"] = model.logit_bias.detach().numpy().astype(np.float32)
    lpi = e["logits_per_image"].numpy().astype(np.float32)
    tensors["logits_per_image"] = lpi
    tensors["probs_per_image"] = torch.sigmoid(e["logits_per_image"]).numpy().astype(np.float32)
    # The pad id is part of the embedding: padding with <pad> (0) instead of </s> (1) moves it.
    wrong = [[0 if (j >= len(u)) else t for j, t in enumerate(row)] for row, u in zip(ids, unpadded)]
    e_wrong = embed(model, None, wrong[:1])
    cos_wrong = float((e_wrong["text"][0] * e["text"][0]).sum())
    assert cos_wrong < 0.999, cos_wrong
    tensors["text_embeds_pad0.0"] = e_wrong["text"][0].numpy()
    sims = (e["image"] @ e["image"].T).numpy()
    off = sims[~np.eye(len(names), dtype=bool)]
    tsims = (e["text"] @ e["text"].T).numpy()
    toff = tsims[~np.eye(len(texts), dtype=bool)]
    probs = tensors["probs_per_image"]
    spread = {
        "image_cosine_offdiag": [float(off.min()), float(off.mean()), float(off.max())],
        "text_cosine_offdiag": [float(toff.min()), float(toff.mean()), float(toff.max())],
        "probs": [float(probs.min()), float(probs.mean()), float(probs.max())],
        "cosine_text0_pad0_vs_pad1": cos_wrong,
    }
    print(spread)
    assert off.mean() < 0.95 and toff.mean() < 0.95, spread
    ref_dir = FIXTURES / "reference-siglip"
    ref_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
              ref_dir / "reference.safetensors",
              metadata={"generator": "scripts/make_siglip_fixtures.py"})
    meta = {
        "generator": "scripts/make_siglip_fixtures.py",
        "versions": versions,
        "seed": SEED,
        "reference": {
            "model": "transformers.SiglipModel (get_image_features / get_text_features / forward)",
            "tokenizer": "AutoTokenizer (tokenizers backend) on tiny-siglip/tokenizer.json, "
                         "padding='max_length', max_length=64, truncation=True",
            "image_processor": "transformers.SiglipImageProcessorPil (PIL backend)",
        },
        "checkpoint": "tiny-siglip",
        "processors": {"tiny": "tiny-siglip/preprocessor_config.json",
                       "224": "preprocessor-siglip-224/preprocessor_config.json"},
        "images": [{"name": s["name"], "file": s["file"]} for s in images],
        "texts": [{"text": t, "ids": row, "unpadded_length": len(u)}
                  for t, row, u in zip(texts, ids, unpadded)],
        "embedding_spread": spread,
    }
    (ref_dir / "reference.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {directory} and {ref_dir}")


def make_full(args, versions: dict) -> None:
    import numpy as np
    import torch
    from safetensors.numpy import save_file
    from transformers import AutoTokenizer
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    directory = Path(args.full)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    tiny = FIXTURES / "tiny-siglip"
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny / f, directory / f)
    tok = AutoTokenizer.from_pretrained(directory)
    proc = SiglipImageProcessorPil()
    model = build_model(full_config(), SEED + 1, math.log(10.0), -2.5)
    model = save_and_reload(model, proc, directory)
    ref = json.loads((FIXTURES / "reference-siglip" / "reference.json").read_text())
    pix = np.stack([pixel_values(proc, FIXTURES / s["file"]) for s in ref["images"]])
    texts = [t["text"] for t in ref["texts"]][:6]
    ids = tokenize(tok, texts)
    e = embed(model, pix, ids)
    tensors = {}
    for i, s in enumerate(ref["images"]):
        tensors[f"image_embeds.{s['name']}"] = e["image"][i].numpy()
    for i in range(len(texts)):
        tensors[f"text_embeds.{i}"] = e["text"][i].numpy()
    out = directory / "reference"
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, out / "reference.safetensors")
    (out / "reference.json").write_text(json.dumps({
        "versions": versions, "seed": SEED + 1,
        "images": [{"name": s["name"], "file": str(FIXTURES / s["file"])} for s in ref["images"]],
        "texts": [{"text": t, "ids": row} for t, row in zip(texts, ids)],
    }, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote full-size random SigLIP base/16 to {directory}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", nargs="?", const=str(DEFAULT_FULL_DIR), default=None)
    ap.add_argument("--skip-committed", action="store_true")
    ap.add_argument("--retrain-tokenizer", action="store_true",
                    help="train a new tokenizer instead of reusing the committed tokenizer.json")
    ap.add_argument("--allow-version-mismatch", action="store_true")
    args = ap.parse_args()
    versions = check_versions(args.allow_version_mismatch)
    if not args.skip_committed:
        make_committed(versions, args.retrain_tokenizer)
    if args.full:
        make_full(args, versions)


if __name__ == "__main__":
    main()
