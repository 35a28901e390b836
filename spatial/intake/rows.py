"""Row checks and normalisation of an export, vectorised over the whole table.

Each row ends in exactly one of three places: the ticket frame (possibly
flagged: no location, invalid coordinates, outside the study area), the
problem list (rejected with its row number, column and reason), or a count
of rows merged into another (unit rows of one fire call).
"""
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pa_compute
from django.utils.translation import gettext as _

from spatial import coords
from spatial.models import TicketSource, TicketStatus
from spatial.normalize import clean_identifier, normalize_address, normalize_text_series, parse_datetimes, parse_floats
from spatial.taxonomy import KEYWORD_RULES, Category, resolve_category

# Flags of rows that are written all the same, one boolean column each.
FLAG_CODES = ("no_location", "bad_coordinates", "outside_study_area")

# Header row is row 1, so the first data row is row 2 (its line in a CSV
# file unless a quoted field spans lines).
FIRST_DATA_ROW = 2

_LOCATION_PAIR = re.compile(r"^\(?\s*(?P<lat>[-+]?\d+(?:\.\d+)?)\s*,\s*(?P<lng>[-+]?\d+(?:\.\d+)?)\s*\)?$")
_SOURCE_WORDS = (
    (TicketSource.IOT_ALARM, ("物联网", "iot", "传感", "感知")),
    (TicketSource.INSPECTION, ("巡查", "巡检", "网格员", "inspection")),
    (TicketSource.HOTLINE, ("12345", "热线", "hotline", "phone", "web")),
)


def reason_text(code, **values):
    """Return the user-facing text of a reject or flag code."""
    texts = {
        "missing_id": _("缺少工单编号"),
        "scientific_id": _("工单编号是科学计数法,位数已丢失;请把该列设为文本格式后重新导出"),
        "duplicate_id": _("工单编号重复,首次出现在第 %(first_row)s 行"),
        "missing_received": _("缺少受理时间"),
        "bad_received": _("受理时间无法识别"),
        "bad_closed": _("办结时间无法识别"),
        "closed_before_received": _("办结时间早于受理时间"),
        "unknown_crs": _("坐标系无法识别,可用 WGS84、GCJ-02、BD-09"),
        "no_location": _("无可用位置(保留,不落图)"),
        "bad_coordinates": _("坐标无效(保留,不落图)"),
        "outside_study_area": _("位置超出研究区(保留并标记)"),
        "merged_unit_rows": _("同一警情的出动单位行(已合并)"),
        "already_imported": _("此前已导入(跳过)"),
        "empty_rows": _("空行(跳过)"),
    }
    if code == "duplicate_id" and not values:
        # The import summary counts duplicates of many first rows under one line.
        return _("工单编号重复")
    return texts[code] % values if values else texts[code]


class RowProblems:
    """Rejected rows collected as (row, column, value, code, message)."""

    def __init__(self):
        self._parts = []

    def add(self, mask, rows, column, values, code, messages=None):
        if not mask.any():
            return
        part = pd.DataFrame({
            "row": rows[mask],
            "column": column or "",
            "value": values[mask] if values is not None else "",
            "code": code,
            "message": messages[mask] if messages is not None else reason_text(code),
        })
        self._parts.append(part)

    def frame(self):
        if not self._parts:
            return pd.DataFrame(columns=["row", "column", "value", "code", "message"])
        return pd.concat(self._parts, ignore_index=True).sort_values(["row", "code"], kind="stable")


def _column(frame, columns, name):
    header = columns.get(name)
    if header is None:
        return pd.Series("", index=frame.index, dtype="string")
    return frame[header].astype("string").fillna("")


def _blank_rows(frame, columns):
    """Return a mask of rows whose cells are all empty, as spreadsheets often leave below the data."""
    # Only rows without a number and a received time can be blank, so the
    # check of every cell runs on those few.
    candidates = (_column(frame, columns, "external_id").str.strip().eq("")
                  & _column(frame, columns, "received_at").str.strip().eq(""))
    if not candidates.any():
        return candidates
    cells = frame[candidates].astype("string").fillna("")
    blank = pd.Series(False, index=frame.index)
    blank[candidates] = cells.apply(lambda column: column.str.strip().eq("")).all(axis=1)
    return blank


def _parse_location(frame, columns):
    """Return lat, lng float arrays and a 'some value was given' mask."""
    if "lat" in columns and "lng" in columns:
        lat_text = _column(frame, columns, "lat").str.strip()
        lng_text = _column(frame, columns, "lng").str.strip()
        lat = parse_floats(lat_text).to_numpy(dtype="float64", copy=True)
        lng = parse_floats(lng_text).to_numpy(dtype="float64", copy=True)
        given = (lat_text.ne("") | lng_text.ne("")).to_numpy()
        if "location" in columns:
            # The "(lat, lng)" column only fills rows whose pair is unusable.
            location = _column(frame, columns, "location")
            fallback = ~coords.usable_location_mask(lat, lng) & location.ne("").to_numpy()
            if fallback.any():
                pair_lat, pair_lng, _pair_given = _parse_location_pairs(location[fallback])
                lat[fallback] = np.where(coords.usable_location_mask(pair_lat, pair_lng), pair_lat, lat[fallback])
                lng[fallback] = np.where(coords.usable_location_mask(pair_lat, pair_lng), pair_lng, lng[fallback])
                given |= fallback
        return lat, lng, given
    if "location" in columns:
        return _parse_location_pairs(_column(frame, columns, "location"))
    empty = np.full(len(frame), np.nan)
    return empty, empty.copy(), np.zeros(len(frame), dtype=bool)


def _parse_location_pairs(series):
    text = normalize_text_series(series)
    parts = text.str.extract(_LOCATION_PAIR)
    lat = pd.to_numeric(parts["lat"], errors="coerce").to_numpy(dtype="float64")
    lng = pd.to_numeric(parts["lng"], errors="coerce").to_numpy(dtype="float64")
    return lat, lng, text.ne("").to_numpy()


def _join_columns(parts, separator):
    """Join string Series element-wise in Arrow; Series.str.cat goes through Python objects."""
    if len(parts) == 1:
        return parts[0]
    arrays = [pa.array(part.astype("string").fillna("").array) for part in parts]
    joined = pa_compute.binary_join_element_wise(*arrays, pa.scalar(separator, arrays[0].type))
    return pd.Series(pd.arrays.ArrowStringArray(joined), index=parts[0].index)


def _classify(raw_type, description):
    """Assign keyword categories to a whole column; the first matching rule wins."""
    text = (raw_type + " " + description).str.lower()
    category = pd.Series(Category.OTHER.value, index=text.index, dtype="string")
    for rule_category, keywords in reversed(KEYWORD_RULES):
        pattern = "|".join(re.escape(keyword.lower()) for keyword in keywords)
        category[text.str.contains(pattern, regex=True)] = rule_category.value
    return category


def _map_source(series, default):
    lowered = normalize_text_series(series).str.lower()
    result = pd.Series(default, index=series.index, dtype="string")
    for source, words in reversed(_SOURCE_WORDS):
        pattern = "|".join(re.escape(word) for word in words)
        result[lowered.str.contains(pattern, regex=True)] = source.value
    return result


def _map_status(series, closed_at, status_values):
    lookup = {key.lower(): value for key, value in status_values.items()}
    given = normalize_text_series(series).str.lower().map(lookup).astype("string")
    derived = pd.Series(np.where(closed_at.notna(), TicketStatus.CLOSED.value, TicketStatus.RECEIVED.value),
                        index=series.index, dtype="string")
    return given.fillna(derived).astype("string")


@dataclass
class RowCheck:
    """Outcome of the whole-file checks, aligned on the index of ``frame``."""

    frame: pd.DataFrame
    rows: pd.Series
    valid: pd.Series
    external_id: pd.Series
    received_at: pd.Series
    closed_at: pd.Series
    crs: pd.Series
    problems: pd.DataFrame
    counts: dict


def check_rows(frame, profile, columns):
    """Run the checks that need the whole file: numbers, times, datums and duplicates.

    Parameters
    ----------
    frame : DataFrame of str, as read
    profile : Profile
    columns : dict field -> header, from ``resolve_columns``

    Returns
    -------
    RowCheck
        Blank rows are dropped from ``frame`` and counted; ``valid`` marks
        the rows that pass, ``problems`` lists the rejected ones.
    """
    rows = pd.Series(np.arange(len(frame)) + FIRST_DATA_ROW, index=frame.index)
    counts = {}
    blank = _blank_rows(frame, columns)
    if blank.any():
        counts["empty_rows"] = int(blank.sum())
        frame = frame[~blank]
        rows = rows[~blank]
    problems = RowProblems()
    rejected = pd.Series(False, index=frame.index)

    external_id = clean_identifier(_column(frame, columns, "external_id"))
    missing_id = external_id.eq("")
    problems.add(missing_id, rows, columns["external_id"], None, "missing_id")
    rejected |= missing_id
    # Excel writes long numbers in a narrow General column as 2.02403E+12 (one
    # digit, a signed exponent) when saving CSV. The digits are gone, and
    # different tickets would share the number.
    scientific_id = external_id.str.fullmatch(r"\d(?:\.\d+)?[eE][+-]\d+").fillna(False).astype(bool)
    problems.add(scientific_id, rows, columns["external_id"], external_id, "scientific_id")
    rejected |= scientific_id

    received_text = _column(frame, columns, "received_at")
    received_at, bad_received = parse_datetimes(received_text, profile.timezone)
    missing_received = received_text.str.strip().eq("")
    problems.add(missing_received, rows, columns["received_at"], None, "missing_received")
    problems.add(bad_received, rows, columns["received_at"], received_text, "bad_received")
    rejected |= missing_received | bad_received

    closed_text = _column(frame, columns, "closed_at")
    closed_at, bad_closed = parse_datetimes(closed_text, profile.timezone)
    problems.add(bad_closed, rows, columns.get("closed_at"), closed_text, "bad_closed")
    rejected |= bad_closed
    closed_early = (closed_at < received_at).fillna(False).astype(bool)
    problems.add(closed_early, rows, columns.get("closed_at"), closed_text, "closed_before_received")
    rejected |= closed_early

    crs_text = _column(frame, columns, "crs").str.strip()
    crs = crs_text.map(lambda value: coords.parse_crs(value) if value else profile.crs)
    unknown_crs = crs.isna()
    problems.add(unknown_crs, rows, columns.get("crs"), crs_text, "unknown_crs")
    rejected |= unknown_crs

    # Duplicates are judged among rows that are otherwise valid, so a
    # rejected first occurrence does not hide a good second one.
    candidates = ~rejected
    if profile.duplicates == "merge":
        order = received_at[candidates].sort_values(kind="stable").index
        repeated = external_id[order].duplicated(keep="first")
        merged = pd.Series(False, index=frame.index)
        merged[repeated[repeated].index] = True
        counts["merged_unit_rows"] = int(merged.sum())
        rejected |= merged
    else:
        valid_ids = external_id[candidates]
        repeated = valid_ids.duplicated(keep="first")
        if repeated.any():
            first_row = rows[candidates].groupby(valid_ids.to_numpy()).transform("first")
            duplicate = pd.Series(False, index=frame.index)
            duplicate[repeated[repeated].index] = True
            messages = pd.Series("", index=frame.index, dtype="object")
            messages[duplicate] = [reason_text("duplicate_id", first_row=row) for row in first_row[repeated]]
            problems.add(duplicate, rows, columns["external_id"], external_id, "duplicate_id", messages)
            rejected |= duplicate

    return RowCheck(frame=frame, rows=rows, valid=~rejected, external_id=external_id, received_at=received_at,
                    closed_at=closed_at, crs=crs, problems=problems.frame(), counts=counts)


def build_tickets(check, profile, columns, positions=slice(None), *, study_area, res_fine, res_coarse):
    """Normalise the valid rows among ``positions`` of a checked file into ticket fields.

    Parameters
    ----------
    check : RowCheck
    profile, columns : as for ``check_rows``
    positions : slice of row positions in ``check.frame``, so that a large
        file can be built and written chunk by chunk
    study_area : (min_lng, min_lat, max_lng, max_lat) in WGS84 degrees
    res_fine, res_coarse : int, H3 resolutions of the two cell columns

    Returns
    -------
    DataFrame with one row per ticket to write, including the flag
    columns ``no_location``, ``bad_coordinates`` and ``outside_study_area``.
    """
    frame = check.frame.iloc[positions]
    rows = check.rows.iloc[positions]
    external_id, received_at, closed_at, crs = check.external_id, check.received_at, check.closed_at, check.crs
    keep = check.valid.iloc[positions].to_numpy()
    kept = frame.index[keep]

    lat, lng, given = _parse_location(frame, columns)
    lat, lng, given = lat[keep], lng[keep], given[keep]
    usable = coords.usable_location_mask(lat, lng)
    zero_pair = (lat == 0) & (lng == 0)
    no_location = ~usable & (~given | zero_pair)
    bad_coordinates = ~usable & given & ~zero_pair
    orig_lat = np.where(usable, lat, np.nan)
    orig_lng = np.where(usable, lng, np.nan)
    row_crs = crs[kept].to_numpy(dtype=object)
    wgs_lat, wgs_lng = coords.to_wgs84(orig_lat, orig_lng, row_crs)
    outside = usable & ~coords.inside_bbox(wgs_lat, wgs_lng, study_area)

    h3_fine = coords.h3_cells(wgs_lat, wgs_lng, res_fine)
    h3_coarse = coords.h3_parents(h3_fine, res_coarse)

    raw_type = _column(frame, columns, "raw_type")
    if profile.raw_type_columns:
        present = [header for header in profile.raw_type_columns if header in frame.columns]
        if present:
            parts = [frame[header].astype("string").fillna("") for header in present]
            raw_type = _join_columns(parts, " / ")
    raw_type = normalize_text_series(raw_type[kept])
    description = normalize_text_series(_column(frame, columns, "description")[kept])
    category = _classify(raw_type, description)
    # A category given in the export is a label the classifier may learn
    # from; a keyword category is only the baseline's guess.
    category_source = pd.Series("keyword", index=category.index, dtype="string")
    if "category" in columns:
        given_category = _column(frame, columns, "category")[kept].map(resolve_category)
        category = given_category.astype("string").fillna(category)
        category_source[given_category.notna().to_numpy()] = "imported"

    address = normalize_text_series(_column(frame, columns, "address")[kept])
    distinct_addresses = {value: normalize_address(value) for value in address.unique()}

    def aligned(series, max_length=None):
        # Arrow-backed string Series stay Arrow end to end; numpy object
        # arrays would cost a copy of every string twice.
        series = series.reset_index(drop=True)
        return series.str.slice(0, max_length) if max_length else series

    def text_column(field_name, max_length):
        return aligned(normalize_text_series(_column(frame, columns, field_name)[kept]), max_length)

    if "source" in columns:
        source = aligned(_map_source(_column(frame, columns, "source")[kept], profile.source))
    else:
        source = pd.Series(profile.source, index=range(len(kept)), dtype="string")
    status = _map_status(_column(frame, columns, "status")[kept], closed_at[kept], profile.status_values)

    tickets = pd.DataFrame({
        "row": rows[kept].to_numpy(),
        "external_id": aligned(external_id[kept]),
        "source": source,
        "received_at": aligned(received_at[kept]),
        "closed_at": aligned(closed_at[kept]),
        "status": aligned(status),
        "category": aligned(category),
        "category_source": aligned(category_source),
        "raw_type": aligned(raw_type, 500),
        "description": aligned(description),
        "address": aligned(address, 500),
        "address_normalized": aligned(address.map(distinct_addresses), 500),
        "lat": wgs_lat,
        "lng": wgs_lng,
        "orig_lat": orig_lat,
        "orig_lng": orig_lng,
        "orig_crs": np.where(usable, row_crs, ""),
        "outside_study_area": outside,
        # Kept per row so that the import counts flags only for the rows it writes.
        "no_location": no_location,
        "bad_coordinates": bad_coordinates,
        "h3_fine": h3_fine,
        "h3_coarse": h3_coarse,
        "department": text_column("department", 200),
        "complainant_name": text_column("complainant_name", 100),
        "complainant_phone": text_column("complainant_phone", 40),
    })
    return tickets


def prepare_rows(frame, profile, columns, *, study_area, res_fine, res_coarse):
    """Check and normalise a whole export in one go; return (tickets, problems, counts)."""
    check = check_rows(frame, profile, columns)
    tickets = build_tickets(check, profile, columns, study_area=study_area, res_fine=res_fine, res_coarse=res_coarse)
    counts = dict(check.counts)
    for code in FLAG_CODES:
        counts[code] = int(tickets[code].sum())
    return tickets, check.problems, counts
