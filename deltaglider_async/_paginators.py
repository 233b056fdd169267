"""``get_paginator``: botocore's own paginators over the client's logical listing.

``client.get_paginator("list_objects_v2").paginate(Bucket=..., Prefix=...,
PaginationConfig={"MaxItems": ..., "PageSize": ..., "StartingToken": ...})`` behaves as on
a boto3 client because it *is* botocore's paginator (aiobotocore's for the async client):
the same ``MaxItems`` truncation, resume tokens, ``build_full_result()`` and JMESPath
``search()``, driven by the pagination model botocore ships for S3. Only the method it
calls differs: the client's ``list_objects``, so pages hold logical names and original
metadata, never ``reference.bin`` or ``.delta`` keys.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Final

from aiobotocore.paginate import AioPaginator
from botocore.model import OperationModel
from botocore.paginate import Paginator

from ._errors import InvalidArgumentError

__all__ = ["PAGINATED_OPERATIONS", "can_paginate", "make_paginator"]

#: boto3 operation names deltaglider pages, and the S3 operation behind each.
PAGINATED_OPERATIONS: Final[Mapping[str, str]] = {"list_objects_v2": "ListObjectsV2"}


@functools.cache
def _paging(operation: str) -> tuple[dict[str, Any], OperationModel]:
    """botocore's pagination model and operation model of the S3 ``operation``."""
    import botocore.session

    session = botocore.session.get_session()
    config = dict(session.get_paginator_model("s3").get_paginator(operation))
    return config, session.get_service_model("s3").operation_model(operation)


def can_paginate(operation_name: str) -> bool:
    """True when ``get_paginator(operation_name)`` is supported."""
    return operation_name in PAGINATED_OPERATIONS


def make_paginator(operation_name: str, method: Callable[..., Any]) -> Paginator[Any]:
    """botocore's paginator for ``operation_name`` calling ``method`` (a client's
    ``list_objects``): an aiobotocore ``AioPaginator`` when ``method`` is a coroutine
    function (its ``paginate()`` is an async iterator), else a botocore ``Paginator``.

    Raises :class:`InvalidArgumentError` naming the supported operations for any other
    name (``list_objects``, the V1 listing, pages with ``Marker``; use
    ``list_objects_v2``).
    """
    operation = PAGINATED_OPERATIONS.get(operation_name)
    if operation is None:
        raise InvalidArgumentError(
            f"get_paginator() cannot page {operation_name!r}: deltaglider pages "
            f"{', '.join(sorted(PAGINATED_OPERATIONS))}"
        )
    config, model = _paging(operation)
    # The stubs type ``method`` as a name; botocore calls it with the request parameters.
    factory: Any = AioPaginator if inspect.iscoroutinefunction(method) else Paginator
    paginator: Paginator[Any] = factory(method, config, model)
    return paginator
