"""Import of the real San Francisco samples, with every count recomputed independently by pandas.

The 311 requests and fire calls are 10,000-row public DataSF extracts
whose timestamps all carry an offset. The expected numbers are written
out, and the test recomputes each one from the raw CSV without the
intake code, so a change in either shows up as a disagreement.
"""
import csv
import io

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from spatial.models import ImportBatch, Ticket

pytestmark = [pytest.mark.realdata, pytest.mark.django_db]

# Study area of the sf311 and sffd profiles: San Francisco, (min_lng, min_lat, max_lng, max_lat).
SAN_FRANCISCO = (-122.53, 37.70, -122.35, 37.84)


def run_import(path, *options):
    output = io.StringIO()
    call_command("import_tickets", str(path), "--no-progress", *options, stdout=output)
    return output.getvalue().splitlines()


def read_raw(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def parse_utc(values):
    return pd.to_datetime(values.replace("", None), utc=True, format="ISO8601")


def usable_points(frame):
    """Return lat, lng and a usable mask, from the latitude/longitude columns or else the "(lat, lng)" text."""
    lat = pd.to_numeric(frame["latitude"], errors="coerce").to_numpy()
    lng = pd.to_numeric(frame["longitude"], errors="coerce").to_numpy()
    pair = frame["location"].str.extract(r"^\(\s*([-\d.]+)\s*,\s*([-\d.]+)\s*\)$").astype(float).to_numpy()

    def usable(point_lat, point_lng):
        finite = np.isfinite(point_lat) & np.isfinite(point_lng)
        with np.errstate(invalid="ignore"):
            return finite & (np.abs(point_lat) <= 90) & (np.abs(point_lng) <= 180) & ~((point_lat == 0) & (point_lng == 0))

    direct = usable(lat, lng)
    from_text = usable(pair[:, 0], pair[:, 1])
    lat = np.where(direct, lat, pair[:, 0])
    lng = np.where(direct, lng, pair[:, 1])
    return lat, lng, direct | from_text


def outside(lat, lng, usable):
    min_lng, min_lat, max_lng, max_lat = SAN_FRANCISCO
    with np.errstate(invalid="ignore"):
        inside = (lng >= min_lng) & (lng <= max_lng) & (lat >= min_lat) & (lat <= max_lat)
    return usable & ~inside


def test_sf311_requests(shared_data, tmp_path):
    path = shared_data / "sf" / "311_service_requests.csv"
    rejects = tmp_path / "rejects.csv"

    lines = run_import(path, "--profile", "sf311", "--skip-invalid", str(rejects))

    # Independent count from the raw file.
    raw = read_raw(path)
    created = parse_utc(raw["created_date"])
    closed = parse_utc(raw["closed_date"])
    closed_early = (closed < created).to_numpy()
    lat, lng, usable = usable_points(raw)
    not_rejected = ~closed_early
    assert raw["unique_key"].is_unique
    assert created.notna().all()
    assert len(raw) == 10_000
    assert closed_early.sum() == 17
    assert (not_rejected & ~usable).sum() == 4_264
    assert (not_rejected & outside(lat, lng, usable)).sum() == 0

    # What the import stored and reported.
    batch = ImportBatch.objects.get()
    assert batch.rows_read == 10_000
    assert batch.rows_imported == 9_983
    assert batch.counts == {"closed_before_received": 17, "no_location": 4_264}
    assert lines[1].startswith("读取 10000 行,导入 9983 行,拒绝 17 行")
    tickets = Ticket.objects.filter(source_system="sf311")
    assert tickets.count() == not_rejected.sum()
    assert tickets.filter(location__isnull=True).count() == (not_rejected & ~usable).sum()
    assert tickets.filter(h3_fine__isnull=True).count() == 4_264
    assert tickets.filter(outside_study_area=True).count() == 0

    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        rejected = list(csv.DictReader(handle))
    assert {row["reason_code"] for row in rejected} == {"closed_before_received"}
    assert {row["column"] for row in rejected} == {"closed_date"}
    assert [int(row["row"]) for row in rejected] == (np.flatnonzero(closed_early) + 2).tolist()
    assert [row["unique_key"] for row in rejected] == raw.loc[closed_early, "unique_key"].tolist()

    first = tickets.get(external_id="6078653")
    assert first.received_at == pd.Timestamp("2016-07-13 15:11:07", tz="UTC")
    assert first.closed_at == pd.Timestamp("2016-07-14 12:13:22", tz="UTC")
    assert first.location is None  # exported as 0.0, 0.0


def test_sffd_fire_calls(shared_data, tmp_path):
    path = shared_data / "sf" / "fire_calls.csv"
    rejects = tmp_path / "rejects.csv"

    lines = run_import(path, "--profile", "sffd", "--skip-invalid", str(rejects))

    # Independent count: reject calls closed before received, then one
    # ticket per call number with the earliest received time.
    raw = read_raw(path)
    received = parse_utc(raw["received_timestamp"])
    available = parse_utc(raw["available_timestamp"])
    closed_early = (available < received).to_numpy()
    valid = raw[~closed_early].assign(received=received[~closed_early])
    earliest = valid.groupby("call_number")["received"].min()
    lat, lng, usable = usable_points(raw)
    assert received.notna().all()
    assert closed_early.sum() == 1
    assert len(valid) - len(earliest) == 1_011
    assert len(earliest) == 8_988
    assert usable.all()
    assert outside(lat, lng, usable).sum() == 0

    batch = ImportBatch.objects.get()
    assert batch.rows_read == 10_000
    assert batch.rows_imported == 8_988
    assert batch.counts == {"closed_before_received": 1, "merged_unit_rows": 1_011}
    assert lines[1].startswith("读取 10000 行,导入 8988 行,拒绝 1 行")
    stored = dict(Ticket.objects.filter(source_system="sffd").values_list("external_id", "received_at"))
    assert len(stored) == 8_988
    assert stored == {number: timestamp.to_pydatetime() for number, timestamp in earliest.items()}
    assert not Ticket.objects.filter(source_system="sffd", location__isnull=True).exists()

    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        rejected = list(csv.DictReader(handle))
    assert len(rejected) == 1
    assert rejected[0]["row"] == str(np.flatnonzero(closed_early)[0] + 2)
    assert rejected[0]["column"] == "available_timestamp"
    assert rejected[0]["reason"] == "办结时间早于受理时间"


def test_sf311_import_twice_adds_nothing(shared_data, tmp_path):
    path = shared_data / "sf" / "311_service_requests.csv"
    run_import(path, "--profile", "sf311", "--skip-invalid", str(tmp_path / "first.csv"))

    run_import(path, "--profile", "sf311", "--skip-invalid", str(tmp_path / "second.csv"))

    assert Ticket.objects.count() == 9_983
    second = ImportBatch.objects.latest("id")
    assert second.rows_imported == 0
    assert second.counts == {"already_imported": 9_983, "closed_before_received": 17}
