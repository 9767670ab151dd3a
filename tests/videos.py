"""Factories for test footage: short videos and stills made from faces that packages ship.

A clip is a background (scikit-image's ``coffee``: no faces) over which "actors" move: loose
crops of faces of InsightFace's ``t1.jpg``, each with a path, a size ramp and a visible
interval. Frames can be blurred (per frame, to make one moment clearly the best shot) and
passed through JPEG, then encoded with PyAV, the library the workbench decodes with.
Nothing here is a stored face: every pixel comes from installed packages at test time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data as skdata

from factories import blur, jpeg

#: codec -> (pixel format, container suffix) for the clips the tests write.
CODECS = {"libx264": ("yuv420p", ".mp4"), "mpeg4": ("yuv420p", ".mp4"), "mjpeg": ("yuvj420p", ".avi")}


def background(width: int, height: int) -> np.ndarray:
    """A face-free photo (scikit-image's coffee cup) resized to (height, width, 3) uint8."""
    return cv2.resize(skdata.coffee(), (width, height), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class Actor:
    """A face patch crossing the frame.

    Attributes:
        patch: (h, w, 3) uint8 RGB loose crop of a face.
        start_xy, end_xy: patch centre at ``t_in_s`` and ``t_out_s``, pixels (linear path).
        start_height, end_height: patch height at those times, pixels (linear ramp).
        t_in_s, t_out_s: visible during [t_in_s, t_out_s).
    """

    patch: np.ndarray
    start_xy: tuple[float, float]
    end_xy: tuple[float, float]
    start_height: float
    end_height: float
    t_in_s: float
    t_out_s: float

    def at(self, t: float) -> tuple[float, float, float] | None:
        """(centre x, centre y, height) at time t, or None when not visible."""
        if not self.t_in_s <= t < self.t_out_s:
            return None
        u = (t - self.t_in_s) / max(self.t_out_s - self.t_in_s, 1e-9)
        x = self.start_xy[0] + u * (self.end_xy[0] - self.start_xy[0])
        y = self.start_xy[1] + u * (self.end_xy[1] - self.start_xy[1])
        return x, y, self.start_height + u * (self.end_height - self.start_height)


def paste(canvas: np.ndarray, patch: np.ndarray, cx: float, cy: float, height: float) -> None:
    """Paste ``patch`` scaled to ``height`` pixels, centred at (cx, cy), clipped to the canvas."""
    scale = height / patch.shape[0]
    w, h = max(1, round(patch.shape[1] * scale)), max(1, round(height))
    resized = cv2.resize(patch, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    x0, y0 = round(cx - w / 2), round(cy - h / 2)
    H, W = canvas.shape[:2]
    left, top = max(0, x0), max(0, y0)
    right, bottom = min(W, x0 + w), min(H, y0 + h)
    if right > left and bottom > top:
        canvas[top:bottom, left:right] = resized[top - y0 : bottom - y0, left - x0 : right - x0]


def render(
    actors: Sequence[Actor],
    *,
    seconds: float,
    fps: float = 10.0,
    size: tuple[int, int] = (640, 360),
    blur_sigma: Callable[[float], float] | float = 0.0,
    jpeg_quality: int | None = None,
) -> list[np.ndarray]:
    """Frames (RGB) of actors over the background; later actors are in front of earlier ones.

    ``blur_sigma`` is a constant or a function of time (seconds), so tests can make one moment
    the sharpest; ``jpeg_quality`` adds JPEG noise to every frame.
    """
    width, height = size
    base = background(width, height)
    frames = []
    for i in range(round(seconds * fps)):
        t = i / fps
        frame = base.copy()
        for actor in actors:
            where = actor.at(t)
            if where is not None:
                paste(frame, actor.patch, *where)
        sigma = blur_sigma(t) if callable(blur_sigma) else blur_sigma
        if sigma > 0:
            frame = blur(frame, sigma)
        if jpeg_quality is not None:
            frame = jpeg(frame, jpeg_quality)
        frames.append(frame)
    return frames


def write_video(
    path: Path,
    frames: Sequence[np.ndarray],
    *,
    fps: float = 10.0,
    codec: str = "libx264",
    faststart: bool = True,
    pts_ms: Sequence[int] | None = None,
    rotation: int = 0,
) -> Path:
    """Encode RGB frames with PyAV.

    Args:
        codec: a key of :data:`CODECS` (h264 and mpeg4 in mp4, mjpeg in avi).
        faststart: mp4 index (``moov``) at the front, so a truncated file stays readable.
        pts_ms: presentation times in milliseconds (variable frame rate); default i / fps.
        rotation: display rotation (counter-clockwise degrees) written to the stream, as
            phones do; the frames are stored turned the other way so they display upright.
    """
    pix_fmt, _ = CODECS[codec]
    options = {"movflags": "faststart"} if faststart and path.suffix == ".mp4" else {}
    height, width = frames[0].shape[:2]
    if rotation % 180:
        width, height = height, width
    container = av.open(str(path), "w", options=options)
    try:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            stream.options = {"preset": "veryfast", "crf": "20"}
        elif codec == "mpeg4":
            stream.bit_rate = 4_000_000  # the default (about 1 Mb/s) smears detail over frames
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for i, rgb in enumerate(frames):
            stored = np.ascontiguousarray(np.rot90(rgb, k=-(rotation // 90))) if rotation else rgb
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = int(pts_ms[i]), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return path


def truncate(path: Path, keep: float, target: Path | None = None) -> Path:
    """Copy of a file cut after ``keep`` (0..1) of its bytes."""
    data = path.read_bytes()
    target = target or path.with_name(f"{path.stem}_cut{path.suffix}")
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def crossing(patch: np.ndarray, *, seconds: float, width: int = 640, height: int = 360, face_height: float = 110.0) -> Actor:
    """A face crossing from left to right along the middle of the frame for the whole clip."""
    margin = face_height
    return Actor(patch, (margin, height / 2), (width - margin, height / 2), face_height, face_height * 1.2, 0.0, seconds)


def sharpest_at(t_best: float, *, sharp: float = 0.0, blurred: float = 3.0, width_s: float = 0.4) -> Callable[[float], float]:
    """Blur sigma over time: ``sharp`` around ``t_best`` (within ``width_s``), ``blurred`` elsewhere."""
    return lambda t: sharp if abs(t - t_best) <= width_s / 2 else blurred


def still_names(count: int) -> list[str]:
    """File names whose natural order differs from their plain sort (img2 before img10)."""
    return [f"img{i}.jpg" for i in range(1, count + 1)]
