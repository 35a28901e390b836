"""Import of hotline exports into tickets: read, check, normalise, COPY.

``import_file`` is shared by the management command, the set-up script and
the tests. By default a file goes in whole or not at all; with
``rejects_path`` the valid rows go in and every rejected row is written
there with its row number, column and reason.
"""
import csv
import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext as _

from spatial.coords import parse_bbox, parse_crs
from spatial.exceptions import IntakeError, MappingError
from spatial.intake.loader import copy_tickets, existing_numbers
from spatial.intake.profiles import PROFILES, load_mapping_file, resolve_columns
from spatial.intake.readers import read_table
from spatial.intake.rows import FLAG_CODES, build_tickets, check_rows, reason_text
from spatial.models import ImportBatch, Ticket

logger = logging.getLogger(__name__)

# Rows normalised and written per step of a large import.
BUILD_CHUNK_ROWS = 100_000

# How many problem lines an all-or-nothing failure lists before "and N more rows".
# A row with several problems takes one line for each.
MAX_LISTED_PROBLEMS = 20


@dataclass
class ImportResult:
    file_name: str
    encoding: str
    rows_read: int = 0
    imported: int = 0
    # Code -> rows, for rejected, skipped, merged and flagged rows.
    counts: dict = field(default_factory=dict)
    rejected: int = 0
    duration_s: float = 0.0
    batch_id: int | None = None
    rejects_path: str = ""

    def summary_lines(self):
        lines = [
            _("文件:%(file)s(编码:%(encoding)s)") % {"file": self.file_name, "encoding": self.encoding or "Excel"},
            _("读取 %(read)s 行,导入 %(imported)s 行,拒绝 %(rejected)s 行,耗时 %(seconds).1f 秒")
            % {"read": self.rows_read, "imported": self.imported, "rejected": self.rejected,
               "seconds": self.duration_s},
        ]
        for code, count in sorted(self.counts.items()):
            if count:
                lines.append(f"  {reason_text(code)}: {count}")
        if self.rejects_path:
            lines.append(_("被拒绝的行及原因已写入 %(path)s") % {"path": self.rejects_path})
        return lines


def resolve_profile(profile_name=None, mapping_path=None):
    """Return the Profile named, or the one a mapping file describes."""
    if mapping_path:
        return load_mapping_file(mapping_path)
    name = profile_name or "12345"
    if name not in PROFILES:
        raise MappingError(
            _("未知的字段映射方案 %(name)s;可用:%(choices)s,或用 --mapping 指定映射文件")
            % {"name": name, "choices": ", ".join(PROFILES)}
        )
    return PROFILES[name]


def _describe_problems(problems, path):
    # A row can have several problems, one line each, so rows are counted separately from lines.
    shown = problems.head(MAX_LISTED_PROBLEMS)
    listed = []
    for problem in shown.itertuples():
        value = f" ({problem.value})" if problem.value else ""
        column = problem.column or "-"
        listed.append(_("  第 %(row)s 行,列 %(column)s:%(message)s%(value)s")
                      % {"row": problem.row, "column": column, "message": problem.message, "value": value})
    hidden_rows = set(problems["row"]) - set(shown["row"])
    if hidden_rows:
        listed.append(_("  ……另有 %(count)s 行") % {"count": len(hidden_rows)})
    header = _("%(path)s:%(count)s 行无效,未导入任何数据。修正这些行,或使用 --skip-invalid 文件名 "
               "导入有效行并把被拒绝的行写入该文件。") % {"path": path, "count": problems["row"].nunique()}
    return "\n".join([header, *listed])


def _write_rejects(problems, frame, rejects_path):
    rejects_path = Path(rejects_path)
    rejects_path.parent.mkdir(parents=True, exist_ok=True)
    original = frame.reset_index(drop=True)
    with rejects_path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "column", "reason_code", "reason", *original.columns])
        for problem in problems.itertuples():
            source_row = original.iloc[int(problem.row) - 2].tolist()
            writer.writerow([problem.row, problem.column, problem.code, problem.message, *source_row])


def _file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_file(path, *, profile_name=None, mapping_path=None, rejects_path=None, encoding=None, sheet=None,
                study_area=None, crs=None, simulated=False, progress=True):
    """Import one export and return an ImportResult.

    ``crs`` overrides the profile's coordinate system for rows whose file
    has no coordinate-system column. Raises IntakeError (nothing written)
    when the file, its mapping or, without ``rejects_path``, any row is
    invalid.
    """
    started = time.perf_counter()
    path = Path(path)
    profile = resolve_profile(profile_name, mapping_path)
    if crs:
        system = parse_crs(crs)
        if system is None:
            raise IntakeError(_("未知坐标系 %(crs)s;可用 wgs84、gcj02、bd09") % {"crs": crs})
        profile = dataclasses.replace(profile, crs=str(system))
    frame, used_encoding = read_table(path, encoding=encoding, sheet=sheet)
    columns = resolve_columns(profile, list(frame.columns), path)
    try:
        bbox = parse_bbox(study_area or profile.study_area or settings.FIREGRID_STUDY_AREA)
    except ValueError as error:
        raise IntakeError(str(error)) from None

    check = check_rows(frame, profile, columns)
    problems, counts = check.problems, dict(check.counts)
    result = ImportResult(file_name=str(path), encoding=used_encoding, rows_read=len(frame))
    if len(problems) and rejects_path is None:
        raise IntakeError(_describe_problems(problems, path))
    if rejects_path is not None:
        # Written even with no rejects, so that a file left by an earlier
        # run is not read as this run's.
        _write_rejects(problems, frame, rejects_path)
    if len(problems):
        result.rejects_path = str(rejects_path)
        for code, count in problems["code"].value_counts().items():
            counts[code] = int(count)
    result.rejected = int(problems["row"].nunique())

    with transaction.atomic():
        with connection.cursor() as cursor:
            # Serialises imports so two loads of one file cannot both pass the
            # duplicate check; readers are not blocked.
            cursor.execute("LOCK TABLE spatial_ticket IN SHARE ROW EXCLUSIVE MODE")
        stored = set()
        if Ticket.objects.filter(source_system=profile.source_system).exists():
            stored = existing_numbers(profile.source_system, check.external_id[check.valid].tolist())
        if stored:
            check.valid &= ~check.external_id.isin(stored)
        counts["already_imported"] = len(stored)
        batch = ImportBatch.objects.create(
            file_name=path.name, file_sha256=_file_sha256(path), profile=profile.name,
            encoding=used_encoding, simulated=simulated, rows_read=len(frame),
        )

        def ticket_chunks():
            # Built chunk by chunk so that the server stores one chunk while
            # the next is normalised; the flags count only the rows written.
            for start in range(0, len(check.frame), BUILD_CHUNK_ROWS):
                tickets = build_tickets(
                    check, profile, columns, slice(start, start + BUILD_CHUNK_ROWS), study_area=bbox,
                    res_fine=settings.FIREGRID_H3_RES_FINE, res_coarse=settings.FIREGRID_H3_RES_COARSE,
                )
                for code in FLAG_CODES:
                    counts[code] = counts.get(code, 0) + int(tickets[code].sum())
                yield tickets

        result.imported = copy_tickets(ticket_chunks(), int(check.valid.sum()), profile.source_system, batch.pk,
                                       progress=progress)
        result.counts = {code: count for code, count in counts.items() if count}
        result.duration_s = time.perf_counter() - started
        batch.rows_imported = result.imported
        batch.counts = result.counts
        batch.duration_s = result.duration_s
        batch.save(update_fields=["rows_imported", "counts", "duration_s"])
        result.batch_id = batch.pk

    logger.info("Imported %s: %d of %d rows in %.1f s (%s)", path, result.imported, result.rows_read,
                result.duration_s, result.counts)
    return result
