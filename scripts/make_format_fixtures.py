#!/usr/bin/env python3
"""Makes the fixtures of tests/library/formats.rs in tests/fixtures/formats/ (committed; rerun
to regenerate). Needs Pillow, NumPy and `heif-enc` (Debian's libheif-examples, which
scripts/setup.sh installs).

- shape.png: a large red circle on a plain light background (what models/glimpse-shapes knows).
- shape.heic / shape.avif: shape.png through heif-enc (HEVC / AV1, quality 90): the parity test
  compares their embeddings with the PNG's.
- dated.heic: a HEIC with EXIF (Apple, iPhone 15, taken 2023-08-05 10:20:30).
- deep.heic: a 16-bit PNG encoded as 10-bit HEVC (HDR content Glimpse clamps to 8 bits).
- multi.heic: two images in one file (96x64 primary, then 40x40): the primary is indexed.
- rotated.heic: 60x100 pixels stored with `irot`/`imir` for EXIF orientation 6 (written with
  libheif's C API through ctypes): upright it is 100x60.
- camera.dng: a hand-written DNG (TIFF, DNGVersion 1.4): IFD0 a 16x12 RGB thumbnail, SubIFD 1
  the full-size JPEG preview (NewSubFileType 1, compression 7, YCbCr), SubIFD 2 uncompressed
  16-bit CFA sensor data; EXIF DateTimeOriginal 2019:06:15 12:00:00, Make/Model.
- camera.nef: a hand-written Nikon-style NEF (TIFF): IFD0 with Make NIKON CORPORATION and a
  small JPEG via JPEGInterchangeFormat, SubIFD with the full-size JPEG preview, SubIFD with CFA
  data; Orientation 6 (the preview has no EXIF: Glimpse rotates it).
- camera.orf / camera.rw2: the ORF (NEF layout, signature IIRO; 72x48) and RW2 (signature
  IIU\\0, preview in JpgFromRaw; 64x80, dated 2022-12-24 18:00) variants.
- pair/DSC_0001.NEF + pair/DSC_0001.JPG: a RAW with its JPEG sibling.
"""
import io
import os
import struct
import subprocess
import sys

import numpy as np
from PIL import Image, ImageDraw

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "formats")


def shape(w=96, h=96, colour=(220, 30, 30), bg=(235, 235, 235)):
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    r = min(w, h) * 0.38
    d.ellipse([w / 2 - r, h / 2 - r, w / 2 + r, h / 2 + r], fill=colour)
    return img


def jpeg_bytes(img, quality=92):
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def png16(path, w, h):
    """A 16-bit RGB PNG (a blue square on a gradient), written by hand (Pillow cannot)."""
    import zlib

    y, x = np.mgrid[0:h, 0:w]
    rgb = np.zeros((h, w, 3), dtype=np.uint16)
    rgb[..., 0] = (x * 65535 // max(w - 1, 1)).astype(np.uint16)
    rgb[..., 1] = 40000
    rgb[..., 2] = 20000
    rgb[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = (5000, 9000, 60000)
    raw = b"".join(b"\0" + rgb[r].astype(">u2").tobytes() for r in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


class Tiff:
    """A little-endian TIFF writer: IFDs as lists of (tag, type, values) with blobs placed after."""

    TYPES = {1: ("B", 1), 2: ("s", 1), 3: ("H", 2), 4: ("I", 4), 7: ("s", 1)}

    def __init__(self):
        self.data = bytearray(b"II*\0\0\0\0\0")

    def blob(self, b):
        if len(self.data) % 2:
            self.data += b"\0"
        at = len(self.data)
        self.data += b
        return at

    def ifd(self, entries):
        """Writes an IFD (entries: (tag, type, value)); returns its offset. value: list of ints,
        or bytes for types 2/7."""
        packed = []
        for tag, typ, value in sorted(entries, key=lambda e: e[0]):
            if typ in (2, 7):
                raw = value + (b"\0" if typ == 2 else b"")
                count = len(raw)
            else:
                fmt, _ = self.TYPES[typ]
                raw = struct.pack("<" + fmt * len(value), *value)
                count = len(value)
            if len(raw) <= 4:
                field = raw.ljust(4, b"\0")
            else:
                field = struct.pack("<I", self.blob(raw))
            packed.append(struct.pack("<HHI", tag, typ, count) + field)
        if len(self.data) % 2:
            self.data += b"\0"
        at = len(self.data)
        self.data += struct.pack("<H", len(packed)) + b"".join(packed) + b"\0\0\0\0"
        return at

    def set_first(self, offset):
        self.data[4:8] = struct.pack("<I", offset)

    def patch_sub_ifds(self, ifd_at, tag, offsets):
        """Points entry `tag` of the IFD at `ifd_at` (a LONG placeholder) to `offsets`."""
        n = struct.unpack_from("<H", self.data, ifd_at)[0]
        for i in range(n):
            e = ifd_at + 2 + 12 * i
            t, typ, count = struct.unpack_from("<HHI", self.data, e)
            if t == tag:
                assert count == len(offsets)
                if count == 1:
                    struct.pack_into("<I", self.data, e + 8, offsets[0])
                else:
                    at = struct.unpack_from("<I", self.data, e + 8)[0]
                    struct.pack_into("<" + "I" * count, self.data, at, *offsets)
                return
        raise KeyError(tag)


def cfa(w, h):
    return (np.random.default_rng(0).integers(0, 4095, size=(h, w), dtype=np.uint16)).tobytes()


def exif_ifd(t, when):
    return t.ifd([(36867, 2, when), (36868, 2, when)])


def dng(path, preview):
    t = Tiff()
    w, h = preview.size
    thumb = preview.resize((16, 12))
    jpeg = jpeg_bytes(preview)
    sensor = cfa(w, h)
    exif_at = exif_ifd(t, b"2019:06:15 12:00:00")
    sub1 = t.ifd([
        (254, 4, [1]), (256, 4, [w]), (257, 4, [h]), (258, 3, [8, 8, 8]), (259, 3, [7]),
        (262, 3, [6]), (273, 4, [t.blob(jpeg)]), (277, 3, [3]), (278, 4, [h]),
        (279, 4, [len(jpeg)]),
    ])
    sub2 = t.ifd([
        (254, 4, [0]), (256, 4, [w]), (257, 4, [h]), (258, 3, [16]), (259, 3, [1]),
        (262, 3, [32803]), (273, 4, [t.blob(sensor)]), (277, 3, [1]), (278, 4, [h]),
        (279, 4, [len(sensor)]), (33421, 3, [2, 2]), (33422, 1, [0, 1, 1, 2]),
    ])
    thumb_raw = thumb.tobytes()
    ifd0 = t.ifd([
        (254, 4, [1]), (256, 4, [16]), (257, 4, [12]), (258, 3, [8, 8, 8]), (259, 3, [1]),
        (262, 3, [2]), (271, 2, b"Glimpse"), (272, 2, b"Fixture Camera"),
        (273, 4, [t.blob(thumb_raw)]), (274, 3, [1]), (277, 3, [3]), (278, 4, [12]),
        (279, 4, [len(thumb_raw)]), (306, 2, b"2019:06:15 12:00:00"), (330, 4, [0, 0]),
        (34665, 4, [exif_at]), (50706, 1, [1, 4, 0, 0]), (50708, 2, b"Glimpse Fixture Camera"),
    ])
    t.patch_sub_ifds(ifd0, 330, [sub1, sub2])
    t.set_first(ifd0)
    with open(path, "wb") as f:
        f.write(t.data)


def nef(path, preview, orientation=1):
    t = Tiff()
    w, h = preview.size
    small = jpeg_bytes(preview.resize((w // 4, h // 4)))
    jpeg = jpeg_bytes(preview)
    sensor = cfa(w, h)
    exif_at = exif_ifd(t, b"2021:03:02 08:30:00")
    sub1 = t.ifd([
        (254, 4, [1]), (259, 3, [6]), (513, 4, [t.blob(jpeg)]), (514, 4, [len(jpeg)]),
    ])
    sub2 = t.ifd([
        (254, 4, [0]), (256, 4, [w]), (257, 4, [h]), (258, 3, [16]), (259, 3, [1]),
        (262, 3, [32803]), (273, 4, [t.blob(sensor)]), (277, 3, [1]), (278, 4, [h]),
        (279, 4, [len(sensor)]),
    ])
    ifd0 = t.ifd([
        (254, 4, [1]), (259, 3, [6]), (271, 2, b"NIKON CORPORATION"), (272, 2, b"NIKON D750"),
        (274, 3, [orientation]), (306, 2, b"2021:03:02 08:30:00"), (330, 4, [0, 0]),
        (513, 4, [t.blob(small)]), (514, 4, [len(small)]), (34665, 4, [exif_at]),
    ])
    t.patch_sub_ifds(ifd0, 330, [sub1, sub2])
    t.set_first(ifd0)
    with open(path, "wb") as f:
        f.write(t.data)


class HeifError(__import__("ctypes").Structure):
    import ctypes as _c
    _fields_ = [("code", _c.c_int), ("subcode", _c.c_int), ("message", _c.c_char_p)]


def heic_with_orientation(img, path, orientation):
    """Encodes `img` (RGB) as HEVC with libheif's own API (through ctypes), asking libheif to
    write `irot`/`imir` boxes for EXIF-style `orientation` (heif_encoding_options version 5's
    image_orientation; heif-enc 1.15 has no option for it)."""
    import ctypes as c

    lib = c.CDLL("libheif.so.1")
    for name in ["heif_image_create", "heif_image_add_plane", "heif_context_get_encoder_for_format",
                 "heif_encoder_set_lossy_quality", "heif_context_encode_image",
                 "heif_context_write_to_file"]:
        getattr(lib, name).restype = HeifError
    lib.heif_context_alloc.restype = c.c_void_p
    lib.heif_image_get_plane.restype = c.POINTER(c.c_uint8)
    lib.heif_encoding_options_alloc.restype = c.POINTER(c.c_uint8)

    def ok(e):
        assert e.code == 0, e.message

    w, h = img.size
    ctx = c.c_void_p(lib.heif_context_alloc())
    image = c.c_void_p()
    ok(lib.heif_image_create(w, h, 1, 10, c.byref(image)))  # RGB, interleaved RGB
    ok(lib.heif_image_add_plane(image, 10, w, h, 8))
    stride = c.c_int()
    plane = lib.heif_image_get_plane(image, 10, c.byref(stride))
    raw = img.tobytes()
    for y in range(h):
        c.memmove(c.addressof(plane.contents) + y * stride.value, raw[y * w * 3:(y + 1) * w * 3], w * 3)
    encoder = c.c_void_p()
    ok(lib.heif_context_get_encoder_for_format(ctx, 1, c.byref(encoder)))  # HEVC
    ok(lib.heif_encoder_set_lossy_quality(encoder, 90))
    options = lib.heif_encoding_options_alloc()
    assert options[0] >= 5, "libheif too old for image_orientation"
    # struct heif_encoding_options (libheif 1.15, x86-64): 4 x u8, pointer at 8, u8 at 16,
    # enum image_orientation at 20.
    c.cast(c.addressof(options.contents) + 20, c.POINTER(c.c_int))[0] = orientation
    ok(lib.heif_context_encode_image(ctx, image, encoder, options, None))
    ok(lib.heif_context_write_to_file(ctx, path.encode()))


def orf(path, preview):
    """An Olympus-style ORF: the NEF layout under ORF's signature (IIRO)."""
    nef(path, preview)
    with open(path, "r+b") as f:
        f.seek(2)
        f.write(b"RO")


def rw2(path, preview):
    """A Panasonic-style RW2: signature IIU\\0, the preview JPEG in IFD0's JpgFromRaw (46)."""
    t = Tiff()
    jpeg = jpeg_bytes(preview)
    exif_at = exif_ifd(t, b"2022:12:24 18:00:00")
    ifd0 = t.ifd([
        (46, 7, jpeg), (271, 2, b"Panasonic"), (272, 2, b"DC-G9"), (274, 3, [1]),
        (306, 2, b"2022:12:24 18:00:00"), (34665, 4, [exif_at]),
    ])
    t.set_first(ifd0)
    t.data[2:4] = b"U\0"
    with open(path, "wb") as f:
        f.write(t.data)


def dated_heic(path, img):
    """A HEIC with EXIF (Make Apple, Model iPhone 15, DateTimeOriginal 2023-08-05 10:20:30):
    heif-enc copies a JPEG input's EXIF into the HEIF."""
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    exif[0x0110] = "iPhone 15"
    exif.get_ifd(0x8769)[0x9003] = "2023:08:05 10:20:30"
    jpeg = path + ".jpg"
    img.save(jpeg, quality=95, exif=exif.tobytes())
    heif_enc(["-q", "90", jpeg, "-o", path])
    os.remove(jpeg)


def heif_enc(args):
    subprocess.run(["heif-enc", *args], check=True, stdout=subprocess.DEVNULL)


def main():
    os.makedirs(os.path.join(OUT, "pair"), exist_ok=True)
    p = lambda *n: os.path.join(OUT, *n)
    shape().save(p("shape.png"))
    heif_enc(["-q", "90", p("shape.png"), "-o", p("shape.heic")])
    heif_enc(["-q", "90", "-A", p("shape.png"), "-o", p("shape.avif")])
    dated_heic(p("dated.heic"), shape(64, 64, colour=(200, 200, 20)))
    png16(p("deep16.png"), 64, 48)
    heif_enc(["-q", "90", "-b", "10", p("deep16.png"), "-o", p("deep.heic")])
    os.remove(p("deep16.png"))
    shape(96, 64, colour=(30, 30, 220)).save(p("multi_a.png"))
    shape(40, 40, colour=(30, 200, 30)).save(p("multi_b.png"))
    heif_enc(["-q", "90", p("multi_a.png"), p("multi_b.png"), "-o", p("multi.heic")])
    os.remove(p("multi_a.png"))
    os.remove(p("multi_b.png"))
    # Stored 60 wide, 100 high, with irot/imir for orientation 6: upright it is 100 x 60.
    heic_with_orientation(shape(60, 100, colour=(20, 160, 160)), p("rotated.heic"), 6)
    dng(p("camera.dng"), shape(120, 80, colour=(230, 200, 20)))
    # Stored sideways (orientation 6: rotate 90° clockwise to view): 60x100 → 100x60 upright.
    nef(p("camera.nef"), shape(60, 100, colour=(140, 40, 160)), orientation=6)
    orf(p("camera.orf"), shape(72, 48, colour=(20, 20, 20)))
    rw2(p("camera.rw2"), shape(64, 80, colour=(250, 250, 250), bg=(60, 60, 60)))
    pair = shape(80, 80, colour=(240, 140, 20))
    nef(p("pair", "DSC_0001.NEF"), pair)
    pair.save(p("pair", "DSC_0001.JPG"), quality=92)
    for name in sorted(os.listdir(OUT)):
        full = p(name)
        if os.path.isfile(full):
            print(f"{name}: {os.path.getsize(full)} bytes")


if __name__ == "__main__":
    sys.exit(main())
