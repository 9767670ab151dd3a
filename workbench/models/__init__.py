"""Model packs: the bundled OpenCV Zoo default, InsightFace-style folders, import of a zip.

Only this sub-package and :mod:`workbench.engine` touch onnxruntime and insightface.
"""

from .packs import (
    DEFAULT_PACK,
    PackInfo,
    ensure_default_pack,
    import_pack,
    list_packs,
    read_pack,
    verify_pack,
)
from .runtime import Preprocessing

__all__ = [
    "DEFAULT_PACK",
    "PackInfo",
    "Preprocessing",
    "ensure_default_pack",
    "import_pack",
    "list_packs",
    "read_pack",
    "verify_pack",
]
