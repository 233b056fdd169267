"""deltaglider-async: delta-compressed artifact storage on S3."""

from ._version import __version__ as __version__
