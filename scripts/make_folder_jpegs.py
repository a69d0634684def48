#!/usr/bin/env python3
"""A folder of camera-like 12 MP JPEGs for the folder-indexing benchmark (issue 15, item 6).

Real photos (scikit-learn's two sample photos, `china.jpg` and `flower.jpg`, 427x640, shipped
inside the installed package, nothing downloaded) are cropped at varying offsets, upscaled to
4000x3000 with Pillow's bicubic, given sensor-like grain (so the files have the entropy, and
so the decode cost, of real 12 MP photos: ~3-6 MB at quality 90) and saved as baseline JPEGs,
quality 90, 4:2:0, with an EXIF block; every fourth file carries orientation 6 (rotate 90°)
and every seventh orientation 3.

    python3 scripts/make_folder_jpegs.py /tmp/glimpse_12mp 64

The images are not committed: they are made in seconds wherever needed.
"""
import os
import sys

import numpy as np
from PIL import Image

try:
    from sklearn.datasets import load_sample_images
except ImportError:  # pragma: no cover
    sys.exit("needs scikit-learn (its sample photos are the source)")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/glimpse_12mp"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    os.makedirs(out, exist_ok=True)
    sources = [Image.fromarray(a) for a in load_sample_images().images]
    rng = np.random.default_rng(15)
    W, H = 4000, 3000
    for i in range(count):
        src = sources[i % len(sources)]
        # A 4:3 crop at a varying offset and scale, so no two files are alike.
        sw, sh = src.size
        cw = int(sw * rng.uniform(0.6, 1.0))
        ch = min(sh, cw * 3 // 4)
        x0 = int(rng.integers(0, sw - cw + 1))
        y0 = int(rng.integers(0, sh - ch + 1))
        crop = src.crop((x0, y0, x0 + cw, y0 + ch))
        if i % 3 == 1:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        big = np.asarray(crop.resize((W, H), Image.Resampling.BICUBIC), dtype=np.float32)
        # Grain: per-pixel luminance noise plus a little chroma noise, like a phone sensor.
        grain = rng.normal(0.0, 3.5, size=(H, W, 1)).astype(np.float32)
        chroma = rng.normal(0.0, 1.5, size=(H, W, 3)).astype(np.float32)
        img = Image.fromarray(np.clip(big + grain + chroma, 0, 255).astype(np.uint8))
        exif = Image.Exif()
        exif[0x010F] = "Glimpse"  # Make
        exif[0x0110] = "bench 12MP"  # Model
        exif[0x0132] = "2026:11:29 12:%02d:00" % (i % 60)  # DateTime
        if i % 4 == 3:
            exif[0x0112] = 6
        elif i % 7 == 6:
            exif[0x0112] = 3
        else:
            exif[0x0112] = 1
        path = os.path.join(out, "IMG_%04d.jpg" % i)
        img.save(path, "JPEG", quality=90, subsampling=2, exif=exif.tobytes())
    sizes = [os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)]
    print("%d files in %s, %.1f MB mean" % (len(sizes), out, sum(sizes) / len(sizes) / 1e6))


if __name__ == "__main__":
    main()
