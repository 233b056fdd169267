"""Pure decisions of the write path: eligibility, reserved names, the ratio rule."""

from __future__ import annotations

import io
import random
import tarfile
import zipfile
from decimal import Decimal
from fractions import Fraction

import pytest

from deltaglider_async._errors import InvalidRatioError, ReservedKeyError
from deltaglider_async.core import planner


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("pkg/__init__.py", "x = 1\n")
    return buf.getvalue()


def empty_zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w"):
        pass
    return buf.getvalue()


def tar_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        info = tarfile.TarInfo("a.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    return buf.getvalue()


RANDOM = random.Random(0).randbytes(2048)


@pytest.mark.parametrize(
    "name",
    [
        "a.zip", "a.tar", "a.gz", "a.tgz", "a.bz2", "a.xz", "a.7z", "a.rar", "a.dmg",
        "a.iso", "a.pkg", "a.deb", "a.rpm", "a.apk", "a.jar", "a.war", "a.ear",
        "a.tar.gz", "a.tar.bz2", "a.tar.xz", "APP.ZIP", "Release.Tar.Gz", "lib-1.0.JAR",
        "v1.2.3.tgz", "a.b.c.deb",
    ],
)  # fmt: skip
def test_delta_extensions_are_eligible_case_insensitively(name: str) -> None:
    assert planner.has_delta_extension(name)
    assert planner.is_delta_eligible(name, RANDOM[:512], 2048)


@pytest.mark.parametrize(
    "name",
    ["a.txt", "a.bin", "a.json", "zip", "a.zip.txt", "a.tar.gz.sha256", "a.ziP.bak", "noext"],
)
def test_other_names_with_random_content_are_not_eligible(name: str) -> None:
    assert not planner.has_delta_extension(name)
    assert not planner.is_delta_eligible(name, RANDOM[:512], 2048)


@pytest.mark.parametrize("name", ["pkg-1.0-py3-none-any.whl", "Lib.1.0.nupkg", "ext.vsix", "x.egg"])
def test_zip_content_under_other_names_is_eligible(name: str) -> None:
    data = zip_bytes()
    assert planner.is_delta_eligible(name, data[: planner.SNIFF_BYTES], len(data))


@pytest.mark.parametrize("content", [zip_bytes(), empty_zip_bytes(), tar_bytes()])
def test_archive_signatures_make_any_name_eligible(content: bytes) -> None:
    head = content[: planner.SNIFF_BYTES]
    assert planner.has_archive_signature(head)
    assert planner.is_delta_eligible("notes.txt", head, len(content))
    assert planner.is_delta_eligible("blob.bin", head, len(content))


def test_random_bytes_in_a_bin_file_are_not_eligible() -> None:
    assert not planner.has_archive_signature(RANDOM[:512])
    assert not planner.is_delta_eligible("blob.bin", RANDOM[:512], len(RANDOM))
    # "ustar" elsewhere than at offset 257 is not a tar header.
    fake = b"ustar" + RANDOM[:600]
    assert not planner.is_delta_eligible("blob.bin", fake[:512], len(fake))


@pytest.mark.parametrize("name", ["a.zip", "a.tar.gz", "empty.whl"])
def test_empty_files_are_never_eligible(name: str) -> None:
    assert not planner.is_delta_eligible(name, b"", 0)


@pytest.mark.parametrize(
    "key",
    [
        "reference.bin",
        "releases/app/reference.bin",
        "a//reference.bin",
        "a.zip.delta",
        "releases/app/a.zip.delta",
        ".delta",
        "releases/",
        "/",
        # deltaglider's own directories, at the root and inside every directory: a user
        # file there could take the key of a directory's later reference.
        ".deltaglider/stats_quick.json",
        "app/.deltaglider/refs/00000001-0123456789abcdef/app-1.zip",
        "a/b/.deltaglider/x.zip",
    ],
)
def test_reserved_keys_are_refused_naming_the_key(key: str) -> None:
    with pytest.raises(ValueError, match=r"releases|reference|delta|/") as info:
        planner.check_user_key(key)
    assert isinstance(info.value, ReservedKeyError)
    assert repr(key) in str(info.value)


def test_empty_key_is_refused() -> None:
    with pytest.raises(ReservedKeyError):
        planner.check_user_key("")


@pytest.mark.parametrize(
    "key",
    [
        "a.zip",
        "reference.bin.zip",
        "my-reference.bin",
        "reference.bin/a.zip",
        "a.deltas",
        "a.DELTA.txt",
        "app/.deltaglider",
        "app/x.deltaglider/a.zip",
        "app/.deltaglider2/a.zip",
    ],
)
def test_ordinary_keys_are_accepted(key: str) -> None:
    planner.check_user_key(key)


@pytest.mark.parametrize(
    "value",
    [-0.1, -1, 1.0000001, 2, float("nan"), float("inf"), float("-inf"), True, False,
     "abc", "", "0.5x", "nan", "1.5", None, [0.5], 1j],
)  # fmt: skip
def test_invalid_ratios_raise_invalid_ratio_error(value: object) -> None:
    with pytest.raises(ValueError, match="max_ratio") as info:
        planner.validate_ratio(value)
    assert isinstance(info.value, InvalidRatioError)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0.0), (0.0, 0.0), (0.5, 0.5), (1, 1.0), (Decimal("0.25"), 0.25), (Fraction(1, 4), 0.25)],
)
def test_valid_ratios(value: object, expected: float) -> None:
    assert planner.validate_ratio(value) == expected


def test_ratio_error_names_its_source() -> None:
    with pytest.raises(InvalidRatioError, match="DG_MAX_RATIO"):
        planner.validate_ratio("7", source="DG_MAX_RATIO")


@pytest.mark.parametrize(
    ("delta", "original", "max_ratio", "keep"),
    [(50, 100, 0.5, True), (51, 100, 0.5, False), (0, 100, 0.0, True), (1, 100, 0.0, False),
     (100, 100, 1.0, True), (101, 100, 1.0, False)],
)  # fmt: skip
def test_ratio_rule(delta: int, original: int, max_ratio: float, keep: bool) -> None:
    assert planner.keep_delta(delta, original, max_ratio) is keep


def test_the_rebase_defaults_agree() -> None:
    from deltaglider_async._config import DEFAULT_REBASE_RATIO, DeltaGliderConfig

    assert DEFAULT_REBASE_RATIO == planner.DEFAULT_REBASE_RATIO
    assert DeltaGliderConfig().rebase_ratio == planner.DEFAULT_REBASE_RATIO
    # On by default, at the threshold measured best (the average-cost condition keeps
    # fast-changing series from making every version a reference).
    assert planner.DEFAULT_REBASE_RATIO == planner.RECOMMENDED_REBASE_RATIO == 0.25
    assert 0 < planner.RECOMMENDED_REBASE_RATIO < planner.UNRELATED_RATIO


@pytest.mark.parametrize(
    ("delta", "size", "threshold", "expected"),
    [
        (20, 100, 0.25, False),  # a good delta
        (26, 100, 0.25, True),  # drifted: becomes the next reference
        (90, 100, 0.25, True),  # still related
        (91, 100, 0.25, False),  # unrelated: stored direct, never a reference
        (60, 100, 1.0, False),  # 1 turns re-baselining off
        (1, 0, 0.25, False),  # an empty file
    ],
)
def test_should_rebase(delta: int, size: int, threshold: float, expected: bool) -> None:
    assert planner.should_rebase(delta, size, threshold) is expected
