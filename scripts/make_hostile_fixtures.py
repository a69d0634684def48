#!/usr/bin/env python3
"""Writes the hostile-input fixtures of the library tests to tests/fixtures/hostile/.

Files a photo folder really contains and `image` must survive: a CMYK JPEG, a 16-bit PNG, an
animated GIF, a truncated JPEG, a PNG whose header declares 100000x100000 pixels (a
decompression bomb), a text file named .jpg. Tests read the committed files; Python is only
needed to regenerate them. Pinned: pillow==12.* or 13.* (any recent Pillow writes the same).
"""
import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "hostile"
OUT.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(7)

# CMYK JPEG (Adobe-style, as Photoshop exports).
cmyk = Image.fromarray(rng.integers(0, 255, (48, 64, 4), dtype=np.uint8), mode="CMYK")
cmyk.save(OUT / "cmyk.jpg", quality=85)

# 16-bit grayscale PNG.
g16 = (np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)
Image.fromarray(g16).save(OUT / "gray16.png")

# Animated GIF: three frames of different colours.
frames = [Image.new("RGB", (32, 24), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
frames[0].save(OUT / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)

# A valid JPEG cut in half.
buf = io.BytesIO()
Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
(OUT / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])

# PNG declaring 100000 x 100000 RGBA pixels with one tiny IDAT: must be refused before any
# allocation, not decoded.
def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 6, 0, 0, 0)
bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")
(OUT / "bomb.png").write_bytes(bomb)

(OUT / "not_an_image.jpg").write_text("this is a text file with a .jpg name\n")
(OUT / "empty.png").write_bytes(b"")
print("wrote", sorted(p.name for p in OUT.iterdir()))
