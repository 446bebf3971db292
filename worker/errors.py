"""The exception tree; the CLI (and later the ingress) turns these into one clear line.

    AutotagError
     ├── InputError          an article or input line we cannot tag (names field / line / id)
     ├── CorpusError         a training-corpus line that breaks the documented format
     ├── TrainingError       the corpus cannot train a model (too few examples of a label ...)
     ├── ConfigError         the configuration file or environment is wrong (names the key)
     ├── EventError          a publish event that breaks the contract (names the field)
     ├── DeliveryError       a callback that failed (status_code; permanent or worth retrying)
     └── BundleError         a model bundle that must not be loaded (names the file)
          ├── BundleIntegrityError   a file's sha256 differs from the manifest, or a file is missing
          └── BundleVersionError     the bundle was made with other library versions
"""


class AutotagError(Exception):
    """Base of every error this package raises on purpose."""


class InputError(AutotagError):
    def __init__(self, message: str, *, field: str | None = None, article_id=None, line_no: int | None = None):
        super().__init__(message)
        self.field = field
        self.article_id = article_id
        self.line_no = line_no


class CorpusError(AutotagError):
    def __init__(self, message: str, *, path=None, line_no: int | None = None):
        where = f"{path}:{line_no}: " if path and line_no else f"{path}: " if path else ""
        super().__init__(where + message)
        self.path = path
        self.line_no = line_no


class TrainingError(AutotagError):
    pass


class BundleError(AutotagError):
    def __init__(self, message: str, *, path=None):
        super().__init__(message)
        self.path = path


class BundleIntegrityError(BundleError):
    pass


class BundleVersionError(BundleError):
    pass


class ConfigError(AutotagError):
    pass


class EventError(AutotagError):
    """A publish event the ingress refuses; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 422):
        super().__init__(message)
        self.field = field
        self.status = status


class DeliveryError(AutotagError):
    def __init__(self, message: str, *, status_code: int | None = None, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.permanent = permanent
        self.retry_after = retry_after
