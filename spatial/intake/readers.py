"""Reading hotline exports (CSV, XLSX, XLS) into string DataFrames.

Encodings are detected by strict decoding, in this order: a UTF-8 byte-order
mark, UTF-8, GBK, GB18030. Every other byte sequence is an error that names
the file and the byte offset, so an export is never decoded by a guess.
"""
import codecs
import io
import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
from django.utils.translation import gettext as _

from spatial.exceptions import IntakeError

logger = logging.getLogger(__name__)

ENCODINGS = ("utf-8-sig", "utf-8", "gbk", "gb18030")
# NOTE: pandas 3.1 deprecates its xlrd engine (Pandas4Warning) in favour of
# calamine, which needs the python-calamine package, not a dependency yet.
EXCEL_SUFFIXES = {".xlsx": "openpyxl", ".xlsm": "openpyxl", ".xls": "xlrd"}


def detect_encoding(raw, path):
    """Return the encoding that decodes ``raw`` without error, or raise IntakeError."""
    if raw.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    else:
        candidates = ["utf-8", "gbk", "gb18030"]
    # The encoding that decodes furthest is the likely one, so its first
    # invalid byte is reported: UTF-8 fails on the first Chinese character of
    # a GBK file, long before the stray byte that makes GBK fail.
    furthest = None
    for encoding in candidates:
        try:
            # A BOM is valid UTF-8, and decoding it keeps offsets counted from the file's start.
            raw.decode("utf-8" if encoding == "utf-8-sig" else encoding)
        except UnicodeDecodeError as error:
            if furthest is None or error.start > furthest[1].start:
                furthest = (encoding, error)
            continue
        return encoding
    encoding, error = furthest
    raise IntakeError(
        _("%(path)s:无法按 UTF-8、GBK 或 GB18030 解码(按 %(encoding)s 解码时第一个无效字节位于偏移 %(offset)s);"
          "请另存为 UTF-8,或用 --encoding 指定实际编码") % {"path": path, "encoding": encoding, "offset": error.start}
    )


def read_table(path, encoding=None, sheet=None):
    """Read an export into a DataFrame of stripped strings ('' for empty cells).

    Returns
    -------
    (frame, encoding) : the table and the encoding used ('' for Excel files).
    """
    path = Path(path)
    if not path.is_file():
        raise IntakeError(_("%(path)s:文件不存在") % {"path": path})
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        return _read_excel(path, EXCEL_SUFFIXES[suffix], sheet), ""
    if suffix not in {".csv", ".txt", ".tsv"}:
        raise IntakeError(_("%(path)s:不支持的文件类型 %(suffix)s;请使用 CSV、XLSX 或 XLS")
                          % {"path": path, "suffix": suffix or "(无)"})

    raw = path.read_bytes()
    if not raw.strip():
        raise IntakeError(_("%(path)s:文件为空;导出文件需要表头行") % {"path": path})
    explicit = bool(encoding)
    if explicit:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise IntakeError(_("未知编码 %(encoding)s;可用例如 utf-8、gbk、gb18030") % {"encoding": encoding}) from None
    else:
        encoding = detect_encoding(raw, path)
    logger.info("Reading %s as %s", path, encoding)

    # The pyarrow parser is several times faster than pandas' own on large
    # exports but reads UTF-8 only, so other encodings are transcoded first.
    codec_name = codecs.lookup(encoding).name
    if explicit and codec_name in {"utf-8", "utf-8-sig"}:
        # Detection has decoded the bytes already, but a named UTF-8 has not.
        # pyarrow would report its invalid bytes without an offset, or as a
        # column-count error where they garble a field boundary.
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise IntakeError(_("%(path)s:第 %(offset)s 字节不是有效的 %(encoding)s 编码;请检查 --encoding")
                              % {"path": path, "offset": error.start, "encoding": encoding}) from None
    if codec_name == "utf-8":
        utf8 = raw
    elif codec_name == "utf-8-sig":
        utf8 = raw[len(codecs.BOM_UTF8):] if raw.startswith(codecs.BOM_UTF8) else raw
    else:
        try:
            utf8 = raw.decode(encoding).encode("utf-8")
        except UnicodeDecodeError as error:
            raise IntakeError(_("%(path)s:第 %(offset)s 字节不是有效的 %(encoding)s 编码;请检查 --encoding")
                              % {"path": path, "offset": error.start, "encoding": encoding}) from None
    nul_count = utf8.count(b"\x00")
    if nul_count:
        # PostgreSQL text cannot store NUL, so COPY would fail on it. In UTF-8
        # the zero byte is never part of another character.
        utf8 = utf8.replace(b"\x00", b"")
        logger.warning("Removed %d NUL characters from %s", nul_count, path)
    separator = "\t" if suffix == ".tsv" else ","
    try:
        frame = pd.read_csv(io.BytesIO(utf8), dtype=str, keep_default_na=False, sep=separator, engine="pyarrow")
    except (pd.errors.ParserError, pa.ArrowInvalid, ValueError) as error:
        if "utf8" in str(error).lower().replace("-", ""):
            raise IntakeError(_("%(path)s:文件不是有效的 %(encoding)s 编码;请检查 --encoding")
                              % {"path": path, "encoding": encoding}) from None
        raise IntakeError(_("%(path)s:CSV 格式错误(%(error)s);请检查引号和列数")
                          % {"path": path, "error": error}) from None
    return frame, encoding


def _read_excel(path, engine, sheet):
    try:
        frame = pd.read_excel(path, sheet_name=sheet if sheet is not None else 0, dtype=str,
                              keep_default_na=False, engine=engine)
    except ValueError as error:
        raise IntakeError(_("%(path)s:无法读取工作表(%(error)s);请用 --sheet 指定名称")
                          % {"path": path, "error": error}) from None
    except Exception as error:  # openpyxl and xlrd raise their own types for corrupt files
        raise IntakeError(_("%(path)s:不是可读取的 %(suffix)s 工作簿(%(error)s)")
                          % {"path": path, "suffix": path.suffix, "error": error}) from None
    return frame.fillna("")
