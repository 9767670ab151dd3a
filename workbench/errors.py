"""Errors raised by the workbench.

Every error a user can cause is a :class:`WorkbenchError`; its message names the file, folder or
value at fault and says what was expected. Third-party exceptions are translated at the boundary
(``raise ImageError(...) from exc``) so callers only ever catch this tree::

    WorkbenchError
    ├── ConfigError            settings file or environment value is invalid
    ├── ChoiceError            a value is not one of a closed list (mode, verdict, status...)
    ├── ImageError             an image cannot be read (missing, empty, truncated, not an image, too big)
    ├── FootageError           a video or folder of stills cannot be read
    ├── NoFaceError            an image holds no face where one was required
    ├── ModelPackError         a model pack is missing, incomplete, corrupt or of the wrong kind
    ├── PackMismatchError      embeddings of two different packs were compared
    ├── GalleryError           the gallery store or index cannot do what was asked
    ├── CaseError              a case does not exist, is closed, or a search ran outside a case
    ├── ReviewError            a review decision breaks the two-person rule
    ├── AccessError            the user does not hold the role an action needs
    └── AuditError             the audit log is broken or an entry cannot be written
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base of every error the workbench raises on purpose."""


class ConfigError(WorkbenchError):
    """A setting is invalid (bad type, out of range, unknown key)."""


class ChoiceError(WorkbenchError, ValueError):
    """A value is not one of a closed list of choices (search mode, verdict, case status...)."""


class ImageError(WorkbenchError):
    """An image cannot be read: missing, empty, truncated, not an image, or too large."""


class FootageError(WorkbenchError):
    """A video file or a folder of stills cannot be read."""


class NoFaceError(WorkbenchError):
    """No face was found where one was required."""


class ModelPackError(WorkbenchError):
    """A model pack is missing, incomplete, corrupt, or does not hold the expected models."""


class PackMismatchError(WorkbenchError):
    """Embeddings from two different model packs were compared or mixed."""


class GalleryError(WorkbenchError):
    """The gallery store or its index cannot do what was asked."""


class CaseError(WorkbenchError):
    """A case is unknown or closed, or a search was attempted outside a case."""


class ReviewError(WorkbenchError):
    """A review decision breaks the two-person rule or refers to an unknown candidate."""


class AccessError(WorkbenchError):
    """The user does not hold the role an action needs, or is not who they say they are."""


class AuditError(WorkbenchError):
    """The audit log failed verification or could not be written."""
