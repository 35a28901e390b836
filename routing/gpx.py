"""GPX 1.1 files of patrol routes, for phone navigation apps.

The file has one waypoint per stop, named with its sequence number and kind,
and one track along the roads. Times are written in UTC as GPX requires.
"""
import xml.etree.ElementTree as ET
from datetime import timezone as dt_timezone

GPX_NAMESPACE = "http://www.topografix.com/GPX/1/1"


def _utc(moment):
    return moment.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def patrol_gpx(plan, name):
    """Return the GPX document of ``plan`` as UTF-8 bytes; ``name`` titles the route."""
    ET.register_namespace("", GPX_NAMESPACE)
    root = ET.Element(f"{{{GPX_NAMESPACE}}}gpx", {"version": "1.1", "creator": "FireGrid"})
    metadata = ET.SubElement(root, f"{{{GPX_NAMESPACE}}}metadata")
    ET.SubElement(metadata, f"{{{GPX_NAMESPACE}}}name").text = name
    ET.SubElement(metadata, f"{{{GPX_NAMESPACE}}}time").text = _utc(plan.start_at)

    start = ET.SubElement(root, f"{{{GPX_NAMESPACE}}}wpt", {"lat": f"{plan.start_lat:.7f}", "lon": f"{plan.start_lng:.7f}"})
    ET.SubElement(start, f"{{{GPX_NAMESPACE}}}time").text = _utc(plan.start_at)
    ET.SubElement(start, f"{{{GPX_NAMESPACE}}}name").text = "0"
    ET.SubElement(start, f"{{{GPX_NAMESPACE}}}desc").text = "start"
    for stop in plan.stops:
        candidate = stop.candidate
        point = ET.SubElement(root, f"{{{GPX_NAMESPACE}}}wpt", {"lat": f"{candidate.lat:.7f}", "lon": f"{candidate.lng:.7f}"})
        ET.SubElement(point, f"{{{GPX_NAMESPACE}}}time").text = _utc(stop.arrival_at)
        ET.SubElement(point, f"{{{GPX_NAMESPACE}}}name").text = f"{stop.sequence} {candidate.kind_label}"
        ET.SubElement(point, f"{{{GPX_NAMESPACE}}}desc").text = f"{candidate.key} {candidate.label}".strip()
        ET.SubElement(point, f"{{{GPX_NAMESPACE}}}type").text = candidate.kind

    track = ET.SubElement(root, f"{{{GPX_NAMESPACE}}}trk")
    ET.SubElement(track, f"{{{GPX_NAMESPACE}}}name").text = name
    segment = ET.SubElement(track, f"{{{GPX_NAMESPACE}}}trkseg")
    for lng, lat in plan.path_lnglat:
        ET.SubElement(segment, f"{{{GPX_NAMESPACE}}}trkpt", {"lat": f"{lat:.7f}", "lon": f"{lng:.7f}"})
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
