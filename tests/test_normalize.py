"""Normalisation of exported text, numbers, ticket numbers, addresses and times."""
import pandas as pd
import pytest

from spatial.normalize import (
    clean_identifier,
    normalize_address,
    normalize_text_series,
    parse_datetimes,
    parse_floats,
    to_halfwidth,
)

SHANGHAI = "Asia/Shanghai"


def parse_one(text, timezone=SHANGHAI):
    """Parse one value and return (timestamp or NaT, unreadable flag)."""
    parsed, unreadable = parse_datetimes(pd.Series([text]), timezone)
    return parsed.iloc[0], bool(unreadable.iloc[0])


def utc(text):
    return pd.Timestamp(text, tz="UTC")


# Full-width forms and text cleanup.

def test_halfwidth_folds_digits_and_punctuation():
    assert to_halfwidth("２０２４－０３－０５　１４：３０") == "2024-03-05 14:30"


def test_halfwidth_folds_letters_and_brackets():
    assert to_halfwidth("ＧＣＪ－０２（高德）") == "GCJ-02(高德)"


def test_halfwidth_leaves_non_strings():
    assert to_halfwidth(None) is None


def test_text_series_strips_and_folds():
    values = normalize_text_series(pd.Series(["ＡＢＣ　", None, "  x  ", "人民路１２号 "]))
    assert values.tolist() == ["ABC", "", "x", "人民路12号"]


def test_floats_read_fullwidth_digits():
    values = parse_floats(pd.Series(["１０９．６８４５", " 23.9594 ", "abc", "", "1e3"]))
    assert values.iloc[0] == pytest.approx(109.6845, abs=1e-12)
    assert values.iloc[1] == pytest.approx(23.9594, abs=1e-12)
    assert pd.isna(values.iloc[2])
    assert pd.isna(values.iloc[3])
    assert values.iloc[4] == 1000.0


# Ticket numbers.

@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("12345.0", "12345"),  # a float cell of a spreadsheet
        ("12345.00", "12345"),
        ("１２３４５", "12345"),
        (" XZ 2024 0001 ", "XZ20240001"),
        ("XZ-12.0", "XZ-12.0"),  # not a number, so the suffix is part of it
        ("12345.5", "12345.5"),
        ("", ""),
    ],
)
def test_identifier_cleanup(given, expected):
    assert clean_identifier(pd.Series([given])).iloc[0] == expected


# Addresses.

def test_address_drops_spaces_and_punctuation():
    given = "广西来宾市象州县 象州镇 ，  人民路１２号（东门）"
    assert normalize_address(given) == "广西来宾市象州县象州镇人民路12号东门"


def test_address_lowercases_latin_letters():
    assert normalize_address("400 Block of 20TH AVE.") == "400blockof20thave"


def test_address_forms_of_one_place_agree():
    forms = ["象州县人民路12号-3栋", "象州县 人民路１２号３栋", "象州县人民路12号【3栋】"]
    assert {normalize_address(form) for form in forms} == {"象州县人民路12号3栋"}


def test_address_empty_stays_empty():
    assert normalize_address("") == ""


# Dates and times. A naive value is local time in the profile's zone, so
# 14:30 in Asia/Shanghai (UTC+8, no daylight saving) is 06:30 UTC.

@pytest.mark.parametrize(
    ("given", "expected_utc"),
    [
        ("２０２４－０３－０５　１４：３０", "2024-03-05 06:30"),
        ("2024年3月5日 14时30分", "2024-03-05 06:30"),
        ("2024年3月5日14时30分15秒", "2024-03-05 06:30:15"),
        ("2024年3月5日下午2点30分", "2024-03-05 06:30"),
        ("2024年3月5日 上午9点", "2024-03-05 01:00"),
        ("2024年3月5日 中午12点", "2024-03-05 04:00"),
        ("2024年3月5日 中午1点", "2024-03-05 05:00"),
        ("2024年3月5日 凌晨2点", "2024-03-04 18:00"),
        ("2024年3月5日 晚上8点", "2024-03-05 12:00"),
        ("2024年03月05号 14:30", "2024-03-05 06:30"),
        ("2024/3/5 14:30", "2024-03-05 06:30"),
        ("2024/3/5 14:30:15", "2024-03-05 06:30:15"),
        ("2024-3-5 9:05", "2024-03-05 01:05"),
        ("2024.03.05", "2024-03-04 16:00"),
        ("2024年3月5日", "2024-03-04 16:00"),
        ("2024-03-05 14:30:00", "2024-03-05 06:30"),
        ("2024-03-05T14:30:00.5", "2024-03-05 06:30:00.5"),
    ],
)
def test_local_forms_parse_as_shanghai(given, expected_utc):
    parsed, unreadable = parse_one(given)
    assert not unreadable
    assert parsed == utc(expected_utc)


@pytest.mark.parametrize(
    ("given", "expected_utc"),
    [
        # 晚上12点 is the midnight that ends the day and 凌晨12点 the one that starts it, never noon.
        ("2024年3月5日 晚上12点", "2024-03-05 16:00"),
        ("2024年3月5日 晚上12点30分", "2024-03-05 16:30"),
        ("2024年3月31日 晚上12点", "2024-03-31 16:00"),
        ("2024年3月5日 凌晨12点", "2024-03-04 16:00"),
    ],
)
def test_twelve_at_night_is_midnight(given, expected_utc):
    parsed, unreadable = parse_one(given)
    assert not unreadable
    assert parsed == utc(expected_utc)


@pytest.mark.parametrize(
    ("given", "expected_utc"),
    [
        ("2024-03-05 14:30:00+00:00", "2024-03-05 14:30"),
        ("2024-03-05T06:30:00Z", "2024-03-05 06:30"),
        ("2024-03-05T14:30:00+08:00", "2024-03-05 06:30"),
        ("2024-03-05T14:30:00+0800", "2024-03-05 06:30"),
        ("2024-03-05 14:30:00 +08:00", "2024-03-05 06:30"),
        ("2024-03-05T06:30:00-08:00", "2024-03-05 14:30"),
    ],
)
def test_explicit_offsets_respected(given, expected_utc):
    parsed, unreadable = parse_one(given)
    assert not unreadable
    assert parsed == utc(expected_utc)


def test_profile_timezone_applies_to_naive():
    parsed, unreadable = parse_one("2016-07-13 08:11:07", "America/Los_Angeles")
    assert not unreadable
    assert parsed == utc("2016-07-13 15:11:07")


def test_offset_wins_over_profile_timezone():
    parsed, _ = parse_one("2016-07-13 15:11:07+00:00", "America/Los_Angeles")
    assert parsed == utc("2016-07-13 15:11:07")


@pytest.mark.parametrize(
    "given",
    ["not a date", "明天上午", "2024-02-30", "2024年13月1日", "2024-03-05 25:00", "2024年3月5日 14时61分", "14:30"],
)
def test_unreadable_values_flagged(given):
    parsed, unreadable = parse_one(given)
    assert unreadable
    assert pd.isna(parsed)


def test_empty_value_is_missing_not_unreadable():
    parsed, unreadable = parse_datetimes(pd.Series(["", "  ", None]), SHANGHAI)
    assert parsed.isna().all()
    assert not unreadable.any()


def test_daylight_saving_gap_is_unreadable():
    # 02:30 did not exist in Los Angeles on 2016-03-13; guessing would shift it by an hour.
    parsed, unreadable = parse_one("2016-03-13 02:30:00", "America/Los_Angeles")
    assert unreadable
    assert pd.isna(parsed)


def test_mixed_column_keeps_row_order():
    values = pd.Series(["2024年3月5日 14时30分", "", "2024-03-05T06:30:00Z", "bad", "2024/3/5 14:30"],
                       index=[10, 11, 12, 13, 14])
    parsed, unreadable = parse_datetimes(values, SHANGHAI)
    assert parsed.index.tolist() == [10, 11, 12, 13, 14]
    assert str(parsed.dtype) == "datetime64[ns, UTC]"
    assert parsed[10] == utc("2024-03-05 06:30")
    assert pd.isna(parsed[11])
    assert parsed[12] == utc("2024-03-05 06:30")
    assert pd.isna(parsed[13])
    assert parsed[14] == utc("2024-03-05 06:30")
    assert unreadable.tolist() == [False, False, False, True, False]
