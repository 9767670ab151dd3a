"""Face quality from landmarks and the aligned crop: size, sharpness, pose, and one overall score.

The overall score is the geometric mean of four factors, each clipped to [0.01, 1]::

    size      = inter_ocular_px / 40               (40 px between the eyes fills SFace's 112 px crop)
    sharpness = laplacian_variance / 150           (variance of the Laplacian of the grey 112x112 crop)
    pose      = (1 - |yaw| / 60) * (1 - |pitch| / 45)   (degrees)
    detector  = detector_score

    score = (size * sharpness * pose * detector) ** (1/4)

so one very poor factor (a blurred, tiny or profile face) pulls the score down hard, and a face
good on all four scores near 1. It ranks shots of one person (best shot of a track, most useful
probe first); it is not a calibrated probability of a correct match.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .types import FaceQuality

FULL_SIZE_IOD_PX = 40.0
FULL_SHARPNESS = 150.0
MAX_YAW_DEG = 60.0
MAX_PITCH_DEG = 45.0
#: nose position between the eye line (0) and the mouth line (1) in the ArcFace template.
FRONTAL_NOSE_RATIO = (71.7366 - 51.5989) / (92.2848 - 51.5989)


def inter_ocular_px(landmarks: np.ndarray) -> float:
    """Distance between the two eye landmarks, pixels."""
    return float(np.linalg.norm(landmarks[1] - landmarks[0]))


def estimate_pose(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw_deg, pitch_deg) estimated from 5 landmarks, after removing in-plane roll.

    Yaw: the nose tip's sideways offset from the midline of eyes and mouth, relative to half
    the eye distance, is about tan(yaw) for a nose protruding half an eye distance. Pitch: the
    nose's height between eye line and mouth line against the frontal template. Positive yaw =
    nose towards the image's right; positive pitch = looking down. Rough (+/- 10 degrees), but
    monotonic, which is what ranking shots needs.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    eye_l, eye_r, nose, mouth_l, mouth_r = lm
    roll = math.atan2(eye_r[1] - eye_l[1], eye_r[0] - eye_l[0])
    rotation = np.array([[math.cos(-roll), -math.sin(-roll)], [math.sin(-roll), math.cos(-roll)]])
    eye_l, eye_r, nose, mouth_l, mouth_r = (rotation @ lm.T).T
    eye_mid = (eye_l + eye_r) / 2
    mouth_mid = (mouth_l + mouth_r) / 2
    half_iod = max(abs(eye_r[0] - eye_l[0]) / 2, 1e-6)
    midline_x = (eye_mid[0] + mouth_mid[0]) / 2
    yaw = math.degrees(math.atan((nose[0] - midline_x) / half_iod))
    span = mouth_mid[1] - eye_mid[1]
    if abs(span) < 1e-6:
        return yaw, 0.0
    ratio = (nose[1] - eye_mid[1]) / span
    pitch = math.degrees(math.atan((ratio - FRONTAL_NOSE_RATIO) * 2.2))
    return yaw, pitch


def sharpness(aligned_rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the grey aligned crop (higher = sharper)."""
    grey = cv2.cvtColor(np.ascontiguousarray(aligned_rgb), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def overall_quality(iod_px: float, sharp: float, yaw_deg: float, pitch_deg: float, detector_score: float) -> float:
    """Geometric mean of the four factors in the module docstring, in [0, 1]."""
    factors = [
        iod_px / FULL_SIZE_IOD_PX,
        sharp / FULL_SHARPNESS,
        (1 - abs(yaw_deg) / MAX_YAW_DEG) * (1 - abs(pitch_deg) / MAX_PITCH_DEG),
        detector_score,
    ]
    clipped = [min(1.0, max(0.01, f)) for f in factors]
    return float(np.prod(clipped) ** (1 / len(clipped)))


def assess(landmarks: np.ndarray, aligned_rgb: np.ndarray, detector_score: float) -> FaceQuality:
    """The full quality record of one face."""
    iod = inter_ocular_px(landmarks)
    sharp = sharpness(aligned_rgb)
    yaw, pitch = estimate_pose(landmarks)
    return FaceQuality(
        inter_ocular_px=iod,
        sharpness=sharp,
        yaw_deg=yaw,
        pitch_deg=pitch,
        score=overall_quality(iod, sharp, yaw, pitch, detector_score),
    )
