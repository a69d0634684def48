#!/usr/bin/env python3
"""Times transformers' ChineseCLIPModel (2 threads) on the full-size random checkpoint of
`make_chinese_clip_fixtures.py --full`: the 21 fixture images in one batch and the 10
reference texts (padded batch with the attention mask), one warm-up each. Compare with the
timings `chinese_clip_full_size` prints, run in the same window (docs/MODELS.md).

    python3 scripts/bench_chinese_clip_pytorch.py [DIR]
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import AutoTokenizer, ChineseCLIPModel
from transformers.models.chinese_clip.image_processing_pil_chinese_clip import (
    ChineseCLIPImageProcessorPil,
)

torch.set_num_threads(2)
d = Path(sys.argv[1] if len(sys.argv) > 1 else "/root/.cache/glimpse/chinese-clip-base-random")
model = ChineseCLIPModel.from_pretrained(d).eval()
tok = AutoTokenizer.from_pretrained(d)
proc = ChineseCLIPImageProcessorPil.from_pretrained(d)
ref = json.loads((d / "reference/reference.json").read_text())
pix = torch.from_numpy(np.stack([
    proc(images=Image.open(i["file"]), return_tensors="np")["pixel_values"][0]
    for i in ref["images"]
]))
enc = tok([t["text"] for t in ref["texts"]], padding=True, return_tensors="pt")
with torch.no_grad():
    model.get_image_features(pixel_values=pix[:2])
    t = time.perf_counter()
    model.get_image_features(pixel_values=pix)
    ti = time.perf_counter() - t
    model.get_text_features(**enc)
    t = time.perf_counter()
    model.get_text_features(**enc)
    tt = time.perf_counter() - t
print(f"pytorch: {len(pix)} images in {ti:.2f} s ({ti / len(pix) * 1e3:.0f} ms/img); "
      f"{len(enc['input_ids'])} texts in {tt:.2f} s")
