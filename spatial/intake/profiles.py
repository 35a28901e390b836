"""Column-mapping profiles: which export column feeds which ticket field.

A profile lists, for each field, the header names seen in real exports;
the first one present in the file is used. Users with another layout pass
a mapping file (TOML or JSON) with the same keys as ``Profile``:

    source_system = "xz12345"
    timezone = "Asia/Shanghai"
    crs = "gcj02"
    [columns]
    external_id = ["工单号"]
    received_at = ["来电时间"]
"""
import json
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.translation import gettext as _

from spatial.coords import parse_bbox, parse_crs
from spatial.exceptions import MappingError
from spatial.models import TicketSource, TicketStatus

# Ticket fields a column can feed. "location" is one "(lat, lng)" text column,
# used when the file has no separate latitude and longitude.
FIELDS = (
    "external_id", "received_at", "closed_at", "status", "raw_type", "category", "description", "address",
    "lat", "lng", "location", "crs", "department", "complainant_name", "complainant_phone", "source",
)
REQUIRED_FIELDS = ("external_id", "received_at")


@dataclass(frozen=True)
class Profile:
    name: str
    source_system: str
    columns: dict
    timezone: str = "Asia/Shanghai"
    crs: str = "wgs84"
    source: str = TicketSource.HOTLINE
    # Columns joined with " / " into the raw type text, when one is not enough.
    raw_type_columns: tuple = ()
    # "reject": a repeated ticket number is an error. "merge": repeated rows
    # are parts of one ticket (a fire call with several units) and the
    # earliest one is kept.
    duplicates: str = "reject"
    # Study area for this data set, overriding the setting.
    study_area: str = ""
    description: str = ""
    status_values: dict = field(default_factory=dict)


CHINESE_12345 = Profile(
    name="12345",
    source_system="12345",
    description="typical Chinese 12345 hotline export (工单编号, 受理时间, 诉求内容...)",
    crs="gcj02",
    columns={
        "external_id": ["工单编号", "工单号", "受理编号", "工单流水号", "诉求编号", "编号"],
        "received_at": ["受理时间", "来电时间", "登记时间", "创建时间", "诉求时间", "派单时间"],
        "closed_at": ["办结时间", "结案时间", "办理完成时间", "完成时间", "归档时间"],
        "description": ["诉求内容", "来电内容", "问题描述", "工单内容", "诉求详情", "内容"],
        "address": ["诉求地址", "事发地址", "发生地址", "问题地址", "地址"],
        "lng": ["经度", "东经", "lng", "lon", "longitude"],
        "lat": ["纬度", "北纬", "lat", "latitude"],
        "crs": ["坐标系", "坐标类型"],
        "department": ["承办单位", "承办部门", "办理单位", "处理单位", "责任单位"],
        "raw_type": ["诉求类型", "问题类型", "工单类型", "诉求分类", "业务类型"],
        "category": ["消防类别", "隐患类别"],
        "status": ["工单状态", "办理状态", "状态"],
        "complainant_name": ["诉求人", "来电人", "诉求人姓名", "联系人", "姓名"],
        "complainant_phone": ["联系电话", "来电号码", "诉求人电话", "手机号码", "手机号", "电话"],
        "source": ["工单来源", "来源渠道", "来源"],
    },
    status_values={
        "已办结": "closed", "办结": "closed", "已完成": "closed", "已归档": "closed", "已关闭": "closed",
        "办理中": "accepted", "处理中": "accepted", "已派单": "dispatched", "待派单": "received",
        "已受理": "received", "待受理": "received", "已整改": "rectified", "已重开": "reopened",
    },
)

SF_311 = Profile(
    name="sf311",
    source_system="sf311",
    description="San Francisco 311 service requests (DataSF export)",
    timezone="America/Los_Angeles",
    study_area="-122.53,37.70,-122.35,37.84",
    columns={
        "external_id": ["unique_key"],
        "received_at": ["created_date"],
        "closed_at": ["closed_date"],
        "status": ["status"],
        "description": ["descriptor"],
        "address": ["incident_address"],
        "lat": ["latitude"],
        "lng": ["longitude"],
        "location": ["location"],
        "department": ["agency_name"],
    },
    raw_type_columns=("category", "complaint_type", "descriptor"),
    status_values={"closed": "closed", "open": "received"},
)

SF_FIRE_CALLS = Profile(
    name="sffd",
    source_system="sffd",
    description="San Francisco fire department calls for service, one row per responding unit",
    timezone="America/Los_Angeles",
    study_area="-122.53,37.70,-122.35,37.84",
    source=TicketSource.OTHER,
    duplicates="merge",
    columns={
        "external_id": ["call_number"],
        "received_at": ["received_timestamp"],
        "closed_at": ["available_timestamp"],
        "raw_type": ["call_type"],
        "description": ["call_final_disposition"],
        "address": ["address"],
        "lat": ["latitude"],
        "lng": ["longitude"],
        "location": ["location"],
        "department": ["battalion"],
    },
)

PROFILES = {profile.name: profile for profile in (CHINESE_12345, SF_311, SF_FIRE_CALLS)}


def header_key(name):
    """Return the comparable form of a header: NFKC, no spaces, lower case."""
    return "".join(unicodedata.normalize("NFKC", str(name)).split()).lower()


def load_mapping_file(path):
    """Read a TOML or JSON mapping file into a Profile; raise MappingError naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise MappingError(_("%(path)s:映射文件不存在") % {"path": path})
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise MappingError(_("%(path)s:映射文件无效(%(error)s)") % {"path": path, "error": error}) from None
    if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
        raise MappingError(_("%(path)s:映射文件需要 columns 表,格式为 字段 = [表头名称]") % {"path": path})

    unknown = sorted(set(data["columns"]) - set(FIELDS))
    if unknown:
        raise MappingError(_("%(path)s:未知字段 %(unknown)s;可用字段:%(fields)s")
                           % {"path": path, "unknown": ", ".join(unknown), "fields": ", ".join(FIELDS)})
    columns = {}
    for field_name, headers in data["columns"].items():
        headers = [headers] if isinstance(headers, str) else headers
        if not isinstance(headers, list) or not all(isinstance(header, str) for header in headers):
            raise MappingError(_("%(path)s:columns.%(field)s 应为一个表头名称或名称列表")
                               % {"path": path, "field": field_name})
        columns[field_name] = headers

    allowed = {"source_system", "timezone", "crs", "source", "raw_type_columns", "duplicates", "study_area",
               "description", "status_values", "columns", "name"}
    extra = sorted(set(data) - allowed)
    if extra:
        raise MappingError(_("%(path)s:未知配置项 %(extra)s;可用:%(allowed)s")
                           % {"path": path, "extra": ", ".join(extra), "allowed": ", ".join(sorted(allowed))})
    if not str(data.get("source_system", "")).strip():
        raise MappingError(_("%(path)s:缺少 source_system;请填写工单编号所属的系统名") % {"path": path})
    if parse_crs(data.get("crs", "wgs84")) is None:
        raise MappingError(_("%(path)s:未知坐标系 %(crs)s;可用 wgs84、gcj02、bd09")
                           % {"path": path, "crs": data.get("crs")})
    if data.get("duplicates", "reject") not in {"reject", "merge"}:
        raise MappingError(_("%(path)s:duplicates 只能是 reject 或 merge") % {"path": path})
    if data.get("source", TicketSource.HOTLINE) not in TicketSource.values:
        raise MappingError(_("%(path)s:source 只能是 %(choices)s")
                           % {"path": path, "choices": ", ".join(TicketSource.values)})
    return Profile(
        name=str(data.get("name", path.stem)),
        source_system=str(data["source_system"]).strip(),
        columns=columns,
        crs=str(parse_crs(data.get("crs", "wgs84"))),
        source=data.get("source", TicketSource.HOTLINE),
        duplicates=data.get("duplicates", "reject"),
        description=str(data.get("description", "")),
        **_optional_settings(data, path),
    )


def _optional_settings(data, path):
    """Check timezone, raw_type_columns, status_values and study_area of a mapping file.

    Returns them as Profile keyword arguments. Without these checks a typo
    surfaced only in the middle of the import, as a traceback or as silently
    wrong tickets (a single header name split into characters).
    """
    timezone = data.get("timezone", "Asia/Shanghai")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise MappingError(_("%(path)s:未知时区 %(timezone)s;请填写 IANA 时区名,例如 Asia/Shanghai")
                           % {"path": path, "timezone": timezone}) from None

    raw_type_columns = data.get("raw_type_columns", [])
    if isinstance(raw_type_columns, str):
        raw_type_columns = [raw_type_columns]
    if not isinstance(raw_type_columns, list) or not all(isinstance(header, str) for header in raw_type_columns):
        raise MappingError(_("%(path)s:raw_type_columns 应为一个表头名称或名称列表") % {"path": path})

    status_values = data.get("status_values", {})
    if not isinstance(status_values, dict) or not all(
        isinstance(key, str) and value in TicketStatus.values for key, value in status_values.items()
    ):
        raise MappingError(_("%(path)s:status_values 应为 原状态 = 状态 的表,状态只能是 %(choices)s")
                           % {"path": path, "choices": ", ".join(TicketStatus.values)})

    study_area = data.get("study_area", "")
    if study_area:
        try:
            parse_bbox(study_area)
        except ValueError as error:
            raise MappingError(f"{path}:{error}") from None
    return {
        "timezone": timezone,
        "raw_type_columns": tuple(raw_type_columns),
        "status_values": dict(status_values),
        "study_area": str(study_area),
    }


def resolve_columns(profile, headers, path):
    """Map each profile field to the file's header present for it.

    Returns a dict field -> header. Raises MappingError when a required field
    has no column, listing the headers found so the user can write a mapping.
    """
    by_key = {}
    for header in headers:
        by_key.setdefault(header_key(header), header)
    resolved = {}
    for field_name, candidates in profile.columns.items():
        for candidate in candidates:
            header = by_key.get(header_key(candidate))
            if header is not None:
                resolved[field_name] = header
                break
    missing = [name for name in REQUIRED_FIELDS if name not in resolved]
    if missing:
        wanted = "; ".join(f"{name}: {' / '.join(profile.columns.get(name, [])) or '-'}" for name in missing)
        raise MappingError(
            _("%(path)s:映射方案 %(profile)s 找不到必需的列(%(wanted)s)。文件表头为:%(headers)s。"
              "请换用其他 --profile,或用 --mapping 指定映射文件。")
            % {"path": path, "profile": profile.name, "wanted": wanted, "headers": ", ".join(map(str, headers))}
        )
    has_pair = "lat" in resolved and "lng" in resolved
    if not has_pair and "location" not in resolved:
        resolved.pop("lat", None)
        resolved.pop("lng", None)
    return resolved
