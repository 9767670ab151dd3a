"""Reading still images into RGB arrays, with clear errors for bad input.

Every image in the workbench is an ``(H, W, 3) uint8`` RGB array with its EXIF orientation
applied: what a person sees when they open the file. Grey images are expanded to three
channels; alpha is composited onto white (custody photos with transparent backgrounds are
usually cut-outs on white). Pillow does the decoding: JPEG, PNG, BMP, TIFF and WebP, plus
anything else Pillow reads.

Memory guard: the pixel count is read from the header before decoding, and images above
``max_pixels`` are refused, so a 20000x20000 file never reaches the decoder.
"""

from __future__ import annotations

import io
import math
import os
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError
from .fileio import input_problem, os_reason

ImageSource = str | os.PathLike | bytes | np.ndarray

#: suffixes the footage and enrolment code treat as stills.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

DEFAULT_MAX_PIXELS = 120_000_000
DEFAULT_MAX_BYTES = 512 * 1024 * 1024


def describe_source(source: ImageSource) -> str:
    """A short name for error messages: the path, or what kind of in-memory input it was."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, bytes):
        return f"<{len(source)} bytes>"
    return f"<array {getattr(source, 'shape', '?')}>"


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """Read an image as an upright ``(H, W, 3) uint8`` RGB array.

    Args:
        source: a file path, the encoded bytes of a file, or an array. Arrays are taken as RGB
            (``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, uint8).
        max_pixels: refuse images with more pixels than this (read from the header).
        max_bytes: refuse files larger than this.

    Raises:
        ImageError: naming the file and the problem (missing, empty, not an image, truncated,
            too large, unsupported array).
    """
    if isinstance(source, np.ndarray):
        return _from_array(source)
    name = describe_source(source)
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        problem = input_problem(path)
        if problem:
            raise ImageError(f"{name}: {problem}")
        if path.is_dir():
            raise ImageError(f"{name}: is a folder, expected an image file")
        if not path.is_file():
            raise ImageError(f"{name}: not a regular file (device, pipe or socket), expected an image file")
        size = path.stat().st_size
        if size == 0:
            raise ImageError(f"{name}: file is empty (0 bytes)")
        if size > max_bytes:
            raise ImageError(f"{name}: file is {size / 1e6:.0f} MB, above the {max_bytes / 1e6:.0f} MB limit")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageError(f"{name}: cannot be read ({os_reason(exc)})") from exc
    if not data:
        raise ImageError(f"{name}: file is empty (0 bytes)")
    return _decode(data, name, max_pixels)


def _decode(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check replaces Pillow's decompression-bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{name}: image is {width}x{height} ({width * height / 1e6:.0f} megapixels), "
                    f"above the {max_pixels / 1e6:.0f} megapixel limit; downscale it first"
                )
            image.load()
            image = ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name}: not an image file Pillow can read (JPEG, PNG, BMP, TIFF, WebP)") from exc
    except Image.DecompressionBombError as exc:
        # Pillow refuses beyond twice its own limit before we can read the size ourselves.
        raise ImageError(f"{name}: image is above the {max_pixels / 1e6:.0f} megapixel limit ({exc})") from exc
    except (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, struct.error, EOFError, MemoryError) as exc:
        # Pillow reports truncated or corrupt data as OSError ("image file is truncated"), and
        # malformed headers (EXIF, TIFF tags) as whatever its parsers raise.
        raise ImageError(f"{name}: image data is corrupt or truncated ({type(exc).__name__}: {exc})") from exc
    return _to_rgb(image, name)


def _to_rgb(image: Image.Image, name: str) -> np.ndarray:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grey (scanners, some TIFFs): scale to 8 bits instead of clipping.
        array = np.asarray(image, dtype=np.float64)
        peak = array.max() if array.size and array.max() > 0 else 1.0
        image = Image.fromarray((array * (255.0 / peak)).astype(np.uint8))
    try:
        rgb = image.convert("RGB")
    except (OSError, ValueError) as exc:
        raise ImageError(f"{name}: cannot convert image mode {image.mode} to RGB ({exc})") from exc
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _from_array(array: np.ndarray) -> np.ndarray:
    if array.dtype != np.uint8:
        raise ImageError(f"{describe_source(array)}: image arrays must be uint8, got {array.dtype}")
    if array.ndim == 2:
        return np.ascontiguousarray(np.repeat(array[:, :, None], 3, axis=2))
    if array.ndim == 3 and array.shape[2] == 3:
        return np.ascontiguousarray(array)
    if array.ndim == 3 and array.shape[2] == 4:
        rgb = array[:, :, :3].astype(np.float32)
        alpha = array[:, :, 3:4].astype(np.float32) / 255.0
        return (rgb * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    raise ImageError(f"{describe_source(array)}: expected (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")


def crop_box(rgb: np.ndarray, bbox_xyxy, margin: float = 0.5) -> np.ndarray:
    """The region of a box plus ``margin`` x its size on each side, clipped to the image.

    Args:
        rgb: (H, W, 3) image.
        bbox_xyxy: (x1, y1, x2, y2) pixels.
        margin: share of the box width (height) added left and right (above and below).
    """
    x1, y1, x2, y2 = bbox_xyxy
    w, h = x2 - x1, y2 - y1
    height, width = rgb.shape[:2]
    left, right = int(max(0, math.floor(x1 - margin * w))), int(min(width, math.ceil(x2 + margin * w)))
    top, bottom = int(max(0, math.floor(y1 - margin * h))), int(min(height, math.ceil(y2 + margin * h)))
    return np.ascontiguousarray(rgb[top:bottom, left:right])
