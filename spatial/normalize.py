"""Normalisation of text, times and addresses as they come in hotline exports.

Chinese exports mix full-width digits and punctuation (２０２４－０３－０５,
１４：３０), Chinese date forms (2024年3月5日 14时30分, 下午3点) and local
times without an offset. Everything here works on pandas Series, because an
import may hold a million rows; the slow paths run once per distinct value.
"""
import re
import unicodedata

import numpy as np
import pandas as pd

_OFFSET_SUFFIX = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
_CHINESE_DATETIME = re.compile(
    r"^(?P<year>\d{4})\s*[年/.\-]\s*(?P<month>\d{1,2})\s*[月/.\-]\s*(?P<day>\d{1,2})\s*[日号]?"
    r"(?:\s*T?\s*(?P<period>凌晨|早上|上午|中午|下午|傍晚|晚上)?\s*"
    r"(?P<hour>\d{1,2})\s*[时點点:]\s*(?:(?P<minute>\d{1,2})\s*分?)?\s*"
    r"(?:[:]?\s*(?P<second>\d{1,2}(?:\.\d+)?)\s*秒?)?)?$"
)
# Hours of these day periods are given on a 12-hour clock.
_AFTERNOON_PERIODS = {"下午", "傍晚", "晚上"}
_WHITESPACE = re.compile(r"\s+")
_ADDRESS_NOISE = re.compile(r"[\s,，。.;；:：、()（）\[\]【】\"'“”‘’#＃-]+")


def to_halfwidth(value):
    """Fold full-width letters, digits and punctuation to their ASCII forms (Unicode NFKC)."""
    return unicodedata.normalize("NFKC", value) if isinstance(value, str) else value


def normalize_text_series(series):
    """Strip and NFKC-fold a Series of strings, touching only the non-ASCII values."""
    series = series.astype("string").fillna("").str.strip()
    non_ascii = ~series.str.isascii()
    if non_ascii.any():
        series = series.copy()
        series[non_ascii] = series[non_ascii].map(to_halfwidth).str.strip()
    return series


def normalize_address(value):
    """Return the comparable form of an address: NFKC, lower case, no spaces or punctuation."""
    if not value:
        return ""
    return _ADDRESS_NOISE.sub("", to_halfwidth(value)).lower()


def _parse_chinese_datetime(text):
    """Parse one Chinese date form into a naive Timestamp, or return NaT."""
    match = _CHINESE_DATETIME.match(text)
    if not match:
        return pd.NaT
    parts = match.groupdict()
    hour = int(parts["hour"] or 0)
    next_day = False
    if parts["period"] in _AFTERNOON_PERIODS and hour < 12:
        hour += 12
    elif parts["period"] == "中午" and hour < 11:
        hour += 12
    elif parts["period"] == "晚上" and hour == 12:
        # 晚上12点 is the midnight that ends the day, not noon.
        hour, next_day = 0, True
    elif parts["period"] == "凌晨" and hour == 12:
        hour = 0
    second = float(parts["second"] or 0)
    try:
        parsed = pd.Timestamp(
            year=int(parts["year"]), month=int(parts["month"]), day=int(parts["day"]),
            hour=hour, minute=int(parts["minute"] or 0), second=int(second),
            microsecond=int(round((second % 1) * 1_000_000)),
        )
    except ValueError:
        return pd.NaT
    if next_day:
        parsed += pd.Timedelta(days=1)
    return parsed


def _parse_naive(values):
    parsed = pd.to_datetime(values, format="ISO8601", errors="coerce")
    failed = parsed.isna() & values.ne("")
    if failed.any():
        distinct = values[failed].unique()
        fallback = {text: _parse_chinese_datetime(text) for text in distinct}
        parsed = parsed.copy()
        parsed[failed] = values[failed].map(fallback).astype(parsed.dtype)
    return parsed


def parse_datetimes(series, timezone):
    """Parse a Series of date-time strings into UTC timestamps.

    Parameters
    ----------
    series : pandas.Series of str
        Values as exported. Empty strings mean "no value".
    timezone : str
        IANA zone of values written without an offset, e.g. ``"Asia/Shanghai"``.

    Returns
    -------
    (parsed, unreadable) : (Series of datetime64[ns, UTC], boolean Series)
        ``unreadable`` is true where a non-empty value could not be parsed.

    Notes
    -----
    ISO 8601 forms (with or without an offset) take the vectorised path.
    Chinese forms such as ``2024年3月5日 下午2点30分`` are parsed once per
    distinct value. A local time that does not exist (a daylight-saving gap)
    or is ambiguous is reported as unreadable rather than guessed.
    """
    values = normalize_text_series(series)
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    present = values.ne("")
    has_offset = present & values.str.contains(_OFFSET_SUFFIX, regex=True)
    naive = present & ~has_offset

    if has_offset.any():
        result[has_offset] = pd.to_datetime(values[has_offset], format="ISO8601", utc=True, errors="coerce")
    if naive.any():
        local = _parse_naive(values[naive])
        result[naive] = local.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")

    unreadable = present & result.isna()
    return result, unreadable


def parse_floats(series):
    """Parse numbers written with full-width digits or stray spaces; return floats with NaN for unreadable."""
    return pd.to_numeric(normalize_text_series(series), errors="coerce").astype("float64")


def clean_identifier(series):
    """Normalise ticket numbers: NFKC, no spaces, and no '.0' or '.00' left by a spreadsheet's float cells."""
    values = normalize_text_series(series).str.replace(r"\s+", "", regex=True)
    # A match-and-slice instead of a regex with a back-reference, which
    # pandas would run in Python once per value.
    float_cells = values.str.fullmatch(r"\d+\.0+")
    if float_cells.any():
        values = values.copy()
        values[float_cells] = values[float_cells].str.replace(r"\.0+$", "", regex=True)
    return values
