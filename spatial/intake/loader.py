"""Bulk writing of prepared tickets with PostgreSQL's COPY.

The rows go straight into the ticket table inside the caller's transaction.
A load that at least doubles the table first drops the secondary indexes
and rebuilds them afterwards, because one sorted build costs less than a
million single-row index updates. DDL is transactional in PostgreSQL, so a
failed load restores the indexes with everything else.
"""
import io
import logging
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from django.db import connection
from psycopg.copy import QueuedLibpqWriter
from tqdm import tqdm

from spatial.models import Ticket

logger = logging.getLogger(__name__)

COPY_COLUMNS = (
    "source_system", "external_id", "source", "received_at", "closed_at", "status", "category", "raw_type",
    "description", "address", "address_normalized", "location", "orig_lng", "orig_lat", "orig_crs",
    "outside_study_area", "h3_fine", "h3_coarse", "department", "complainant_name", "complainant_phone",
    "batch_id", "category_source",
)
# Smaller loads keep the indexes: rebuilding them would cost more.
INDEX_REBUILD_MIN_ROWS = 50_000
COPY_CHUNK_ROWS = 100_000
# Little-endian EWKB header of a 2D point with SRID 4326.
_EWKB_POINT_4326 = np.frombuffer(bytes.fromhex("0101000020E6100000").hex().upper().encode(), dtype=np.uint8)
_HEX_DIGITS = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)


def ewkb_points_hex(lat, lng):
    """Return hex EWKB strings of WGS84 points for arrays of degrees; None where lat is NaN.

    Built with numpy because shapely.to_wkb took 2.0 s for a million points
    on the 2-core development machine, and COPY parses hex EWKB directly.
    """
    coords = np.ascontiguousarray(np.column_stack([lng, lat]).astype("<f8"))
    raw = coords.view(np.uint8).reshape(len(coords), 16)
    digits = np.empty((len(coords), 32), dtype=np.uint8)
    digits[:, 0::2] = _HEX_DIGITS[raw >> 4]
    digits[:, 1::2] = _HEX_DIGITS[raw & 0x0F]
    buffer = np.concatenate([np.broadcast_to(_EWKB_POINT_4326, (len(coords), 18)), digits], axis=1)
    values = np.ascontiguousarray(buffer).view("S50").ravel().astype(object)
    text = pa.array(values, type=pa.binary()).cast(pa.string())
    return pa.compute.if_else(pa.array(np.isnan(lat)), pa.scalar(None, pa.string()), text)


def existing_numbers(source_system, numbers):
    """Return the set of ticket numbers of a source system that are already stored."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT external_id FROM spatial_ticket WHERE source_system = %s AND external_id = ANY(%s)",
            [source_system, list(numbers)],
        )
        return {row[0] for row in cursor.fetchall()}


def _to_arrow(tickets, source_system, batch_id):
    def nullable_int(values):
        return pa.array(np.asarray(values, dtype="int64"), mask=np.asarray(values) == 0)

    def text(values):
        return pa.array(pd.Series(values, dtype="string").fillna("").array, type=pa.string())

    def timestamps(values):
        return pa.array(pd.Series(values).dt.tz_convert("UTC").astype("datetime64[us, UTC]"))

    count = len(tickets)
    lat = tickets["lat"].to_numpy(dtype="float64")
    return pa.table({
        "source_system": pa.array([source_system] * count, type=pa.string()),
        "external_id": text(tickets["external_id"]),
        "source": text(tickets["source"]),
        "received_at": timestamps(tickets["received_at"]),
        "closed_at": timestamps(tickets["closed_at"]),
        "status": text(tickets["status"]),
        "category": text(tickets["category"]),
        "raw_type": text(tickets["raw_type"]),
        "description": text(tickets["description"]),
        "address": text(tickets["address"]),
        "address_normalized": text(tickets["address_normalized"]),
        "location": ewkb_points_hex(lat, tickets["lng"].to_numpy(dtype="float64")),
        "orig_lng": pa.array(tickets["orig_lng"].to_numpy(dtype="float64"), from_pandas=True),
        "orig_lat": pa.array(tickets["orig_lat"].to_numpy(dtype="float64"), from_pandas=True),
        "orig_crs": text(tickets["orig_crs"]),
        "outside_study_area": pa.array(tickets["outside_study_area"].to_numpy(dtype=bool)),
        "h3_fine": nullable_int(tickets["h3_fine"]),
        "h3_coarse": nullable_int(tickets["h3_coarse"]),
        "department": text(tickets["department"]),
        "complainant_name": text(tickets["complainant_name"]),
        "complainant_phone": text(tickets["complainant_phone"]),
        "batch_id": pa.array([batch_id] * count, type=pa.int64()),
        "category_source": text(tickets["category_source"]),
    })


def _secondary_indexes(cursor):
    """Return (name, definition) of the ticket table's indexes other than the primary key and unique ones."""
    cursor.execute(
        """
        SELECT i.relname, pg_get_indexdef(x.indexrelid)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = 'spatial_ticket'::regclass AND NOT x.indisprimary AND NOT x.indisunique
        """
    )
    return cursor.fetchall()


def copy_tickets(chunks, count, source_system, batch_id, progress=True):
    """COPY prepared tickets into the ticket table; the caller holds the transaction.

    Parameters
    ----------
    chunks : iterable of DataFrame, or one DataFrame
        Prepared tickets; a generator lets the caller build the next chunk
        while the server stores the last.
    count : int
        Rows the chunks hold in all; decides whether indexes are rebuilt.

    Returns the number of rows written.
    """
    if isinstance(chunks, pd.DataFrame):
        chunks = [chunks]
    options = pa_csv.WriteOptions(include_header=False)
    copy_sql = f"COPY spatial_ticket ({', '.join(COPY_COLUMNS)}) FROM STDIN (FORMAT csv)"
    written = 0

    with connection.cursor() as cursor:
        existing = Ticket.objects.count()
        rebuild = count >= INDEX_REBUILD_MIN_ROWS and count >= existing
        dropped = []
        if rebuild:
            dropped = _secondary_indexes(cursor)
            for name, _definition in dropped:
                cursor.execute(f'DROP INDEX "{name}"')  # names come from pg_class, not from input
            logger.info("Dropped %d secondary indexes for a load of %d rows", len(dropped), count)

        copy_started = time.perf_counter()
        with tqdm(total=count, unit="rows", desc="COPY", disable=not progress, leave=False) as bar:
            # The queued writer sends on its own thread, so the server parses
            # one chunk while Arrow serialises the next.
            with cursor.cursor.copy(copy_sql, writer=QueuedLibpqWriter(cursor.cursor)) as copy:
                for tickets in chunks:
                    if len(tickets) == 0:
                        continue
                    table = _to_arrow(tickets, source_system, batch_id)
                    for start in range(0, table.num_rows, COPY_CHUNK_ROWS):
                        part = table.slice(start, COPY_CHUNK_ROWS)
                        sink = io.BytesIO()
                        pa_csv.write_csv(part, sink, options)
                        copy.write(sink.getvalue())
                        bar.update(part.num_rows)
                    written += table.num_rows

        logger.info("COPY of %d rows took %.1f s", written, time.perf_counter() - copy_started)
        rebuild_started = time.perf_counter()
        if dropped:
            # Django's foreign keys are deferred; their pending checks must run
            # before PostgreSQL lets the table's indexes be rebuilt.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        for name, definition in dropped:
            cursor.execute(definition)
        if rebuild:
            cursor.execute("ANALYZE spatial_ticket")
            logger.info("Rebuilt %d indexes in %.1f s", len(dropped), time.perf_counter() - rebuild_started)
    return written
