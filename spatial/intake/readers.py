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

from spatial.exceptions import IntakeError

logger = logging.getLogger(__name__)

ENCODINGS = ("utf-8-sig", "utf-8", "gbk", "gb18030")
EXCEL_SUFFIXES = {".xlsx": "openpyxl", ".xlsm": "openpyxl", ".xls": "xlrd"}


def detect_encoding(raw, path):
    """Return the encoding that decodes ``raw`` without error, or raise IntakeError."""
    if raw.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    else:
        candidates = ["utf-8", "gbk", "gb18030"]
    first_error = None
    for encoding in candidates:
        try:
            raw.decode(encoding)
        except UnicodeDecodeError as error:
            first_error = first_error or error
            continue
        return encoding
    raise IntakeError(
        f"{path}: cannot decode the file as UTF-8, GBK or GB18030 (first invalid byte at offset "
        f"{first_error.start}); save it as UTF-8 or pass --encoding with its real encoding"
    )


def read_table(path, encoding=None, sheet=None):
    """Read an export into a DataFrame of stripped strings ('' for empty cells).

    Returns
    -------
    (frame, encoding) : the table and the encoding used ('' for Excel files).
    """
    path = Path(path)
    if not path.is_file():
        raise IntakeError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        return _read_excel(path, EXCEL_SUFFIXES[suffix], sheet), ""
    if suffix not in {".csv", ".txt", ".tsv"}:
        raise IntakeError(f"{path}: unsupported file type {suffix or '(none)'}; use CSV, XLSX or XLS")

    raw = path.read_bytes()
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise IntakeError(f"unknown encoding {encoding!r}; use for example utf-8, gbk or gb18030") from None
    else:
        encoding = detect_encoding(raw, path)
    logger.info("Reading %s as %s", path, encoding)
    separator = "\t" if suffix == ".tsv" else ","
    try:
        frame = pd.read_csv(
            io.BytesIO(raw), encoding=encoding, dtype=str, keep_default_na=False, sep=separator,
            skipinitialspace=False, on_bad_lines="error", engine="c",
        )
    except UnicodeDecodeError as error:
        raise IntakeError(f"{path}: the file is not valid {encoding} at byte {error.start}; "
                          "check the --encoding value") from None
    except pd.errors.ParserError as error:
        raise IntakeError(f"{path}: malformed CSV ({error}); check quoting and the column count") from None
    except pd.errors.EmptyDataError:
        raise IntakeError(f"{path}: the file is empty; an export needs a header row") from None
    return frame, encoding


def _read_excel(path, engine, sheet):
    try:
        frame = pd.read_excel(path, sheet_name=sheet if sheet is not None else 0, dtype=str,
                              keep_default_na=False, engine=engine)
    except ValueError as error:
        raise IntakeError(f"{path}: cannot read the sheet ({error}); name it with --sheet") from None
    except Exception as error:  # openpyxl and xlrd raise their own types for corrupt files
        raise IntakeError(f"{path}: not a readable {path.suffix} workbook ({error})") from None
    return frame.fillna("")
