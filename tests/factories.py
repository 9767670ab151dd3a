"""Factories for test inputs: degraded copies of real faces and deliberately broken files.

Every image starts from pictures that installed packages ship; nothing here is a stored face.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def encode(rgb: np.ndarray, fmt: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **params)
    return buffer.getvalue()


def save(rgb: np.ndarray, path: Path, fmt: str | None = None, **params) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, format=fmt, **params)
    return path


# -- degradations (RGB uint8 in, RGB uint8 out) ---------------------------------------------------


def scale_face_to(rgb: np.ndarray, face_width_px: float, target_px: int) -> np.ndarray:
    """Downscale so that a face ``face_width_px`` wide becomes ``target_px`` wide."""
    factor = target_px / face_width_px
    return cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)


def blur(rgb: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    return cv2.GaussianBlur(rgb, (0, 0), sigma)


def jpeg(rgb: np.ndarray, quality: int = 10) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(encode(rgb, "JPEG", quality=quality))).convert("RGB"))


def grey(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("L"))


def rotate(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """In-plane rotation about the centre, canvas enlarged so nothing is cut."""
    return np.asarray(Image.fromarray(rgb).rotate(degrees, expand=True, resample=Image.BILINEAR, fillcolor=(90, 90, 90)))


def with_exif_orientation(rgb: np.ndarray, path: Path, orientation: int = 6) -> Path:
    """Store the picture rotated, with an EXIF tag telling viewers how to turn it upright.

    Orientation 6 ("rotate 90 clockwise to display") means the pixels are stored turned 90
    degrees anticlockwise; 3 means stored upside down; 8 turned clockwise.
    """
    stored = {6: Image.ROTATE_90, 3: Image.ROTATE_180, 8: Image.ROTATE_270}[orientation]
    image = Image.fromarray(rgb).transpose(stored)
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(path, format="JPEG", quality=95, exif=exif.tobytes())
    return path


# -- broken files ---------------------------------------------------------------------------------


def truncated_jpeg(rgb: np.ndarray, keep: float = 0.5) -> bytes:
    data = encode(rgb, "JPEG", quality=90)
    return data[: int(len(data) * keep)]


def png_claiming_size(width: int, height: int) -> bytes:
    """A valid small PNG whose header claims ``width`` x ``height`` (a decompression bomb shape)."""
    data = bytearray(encode(np.zeros((8, 8, 3), np.uint8), "PNG"))
    # IHDR chunk: 8-byte signature, 4 length, 4 type, then width and height.
    struct.pack_into(">II", data, 16, width, height)
    crc = zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF
    struct.pack_into(">I", data, 29, crc)
    return bytes(data)
