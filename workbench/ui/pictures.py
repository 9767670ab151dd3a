"""Pictures for the page: small JPEGs, never full frames.

A dashboard sends every picture through the kernel's websocket; a 1080p frame as PNG is about
3 MB, a 160 px JPEG thumbnail about 5 KB. So pictures are cut and scaled here, on the kernel
side, before they become widgets.
"""

from __future__ import annotations

import cv2
import ipywidgets as widgets
import numpy as np

#: long side of a thumbnail in a grid, pixels.
THUMB_PX = 112
#: long side of a picture shown large (side by side for review), pixels.
LARGE_PX = 360


def jpeg_bytes(rgb: np.ndarray, max_px: int = THUMB_PX, *, quality: int = 82, upscale: bool = False) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG bytes whose long side is at most ``max_px`` (exactly
    ``max_px`` with ``upscale``: two faces compared side by side are then shown at one size)."""
    rgb = np.ascontiguousarray(rgb)
    scale = max_px / max(rgb.shape[:2])
    if scale < 1.0:
        rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    elif upscale and scale > 1.0:
        rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    ok, data = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"cannot encode a {rgb.shape} picture as JPEG")
    return data.tobytes()


def decode(data: bytes) -> np.ndarray:
    """PNG or JPEG bytes -> (H, W, 3) uint8 RGB."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("the stored picture cannot be decoded")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def picture(rgb: np.ndarray | bytes | None, max_px: int = THUMB_PX, *, alt: str = "no image", upscale: bool = False) -> widgets.Widget:
    """An Image widget of at most ``max_px`` (from RGB or PNG/JPEG bytes), or a grey "no image" box;
    ``upscale`` enlarges small pictures to ``max_px`` (for side-by-side comparison)."""
    if rgb is None:
        return widgets.HTML(
            f'<div class="wb-no-image" style="width:{max_px}px;height:{max_px}px;display:flex;align-items:center;'
            f'justify-content:center;background:#eee;color:#666;border:1px solid #ccc">{alt}</div>'
        )
    if isinstance(rgb, bytes | bytearray):
        rgb = decode(bytes(rgb))
    return widgets.Image(
        value=jpeg_bytes(rgb, max_px, upscale=upscale), format="jpeg", layout=widgets.Layout(max_width=f"{max_px}px", object_fit="contain")
    )
