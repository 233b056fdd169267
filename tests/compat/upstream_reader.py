"""Download logical keys with the original ``deltaglider`` package and print their SHA-256.

Run by the compatibility tests with the interpreter of the upstream virtual environment
(see ``upstream.py``), in isolated mode, never with this repository on ``sys.path``::

    python -I upstream_reader.py --endpoint-url URL --bucket BUCKET < keys.json
    python -I upstream_reader.py --endpoint-url URL --serve < requests.jsonl

Credentials and region come from the environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``; ``AWS_ENDPOINT_URL`` when
``--endpoint-url`` is not given).

One-shot mode: standard input is a JSON list of logical keys (the names the files were
uploaded as: ``dir/app.zip``, not ``dir/app.zip.delta``). Each key is downloaded with
upstream's public ``DeltaGliderClient.download(s3_url, path)`` (which itself falls back
from a logical name to its ``.delta`` object) into a temporary directory, and standard
output is one JSON document::

    {"deltaglider": "6.2.0",
     "results": {"dir/app.zip": {"sha256": "..."},
                 "dir/b.gz": {"error": "DiffDecodeError: Failed to decode delta: ..."}}}

``--serve`` mode (used by the tests, to pay the interpreter and boto3 start-up once per
S3 server): each line of standard input is ``{"bucket": ..., "keys": [...]}`` and gets one
line of output, the document above; the process ends at end of input. Every request uses
a new upstream client, so no reference cached for one request serves another.

The exit status is 0 whenever every key got a result, whether a sha256 or an error.
This file imports only the standard library and ``deltaglider``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_keys(endpoint_url: str | None, bucket: str, keys: list[str]) -> dict[str, Any]:
    from deltaglider import create_client

    client = create_client(endpoint_url=endpoint_url, log_level="WARNING")
    results: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="upstream-reader-") as workdir:
        for index, key in enumerate(keys):
            target = Path(workdir) / f"{index:05d}"
            try:
                client.download(f"s3://{bucket}/{key}", target)
                results[key] = {"sha256": _sha256(target)}
            except Exception as exc:
                results[key] = {"error": f"{type(exc).__name__}: {exc}"}
            finally:
                target.unlink(missing_ok=True)
    return {"deltaglider": importlib.metadata.version("deltaglider"), "results": results}


def _is_key_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(key, str) for key in value)


def _emit(out: TextIO, document: dict[str, Any]) -> None:
    out.write(json.dumps(document) + "\n")
    out.flush()


def _check_upstream(expected: str | None) -> str | None:
    """Why the imported ``deltaglider`` is not the upstream release wanted, or None."""
    import deltaglider

    version = importlib.metadata.version("deltaglider")
    if expected is not None and version != expected:
        return f"expected deltaglider {expected}, found {version}"
    package_dir = Path(deltaglider.__file__).resolve().parent
    if not package_dir.is_relative_to(Path(sys.prefix).resolve()):
        return f"deltaglider imported from {package_dir}, outside {sys.prefix}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    parser.add_argument("--bucket", help="the bucket (one-shot mode)")
    parser.add_argument("--serve", action="store_true", help="answer one request per line")
    parser.add_argument("--expect-version", help="fail unless this deltaglider is installed")
    args = parser.parse_args(argv)
    if args.serve == (args.bucket is not None):
        parser.error("give either --bucket (one-shot) or --serve")

    out = sys.stdout
    # Anything upstream prints goes to stderr: stdout carries only JSON documents.
    with contextlib.redirect_stdout(sys.stderr):
        problem = _check_upstream(args.expect_version)
        if problem is not None:
            sys.stderr.write(problem + "\n")
            return 2
        if not args.serve:
            keys = json.load(sys.stdin)
            if not _is_key_list(keys):
                parser.error("standard input must be a JSON list of keys")
            _emit(out, _read_keys(args.endpoint_url, args.bucket, keys))
            return 0
        for line in sys.stdin:
            if not line.strip():
                continue
            request = json.loads(line)
            if not isinstance(request, dict) or not _is_key_list(request.get("keys")):
                sys.stderr.write(f"bad request: {line!r}\n")
                return 2
            _emit(out, _read_keys(args.endpoint_url, str(request["bucket"]), request["keys"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
