"""HTTP intake for gateways: POST a batch of readings with the gateway's key."""
import logging

from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from iot.gateways import authenticate
from iot.ingest import Message, SensorDirectory, ingest

logger = logging.getLogger(__name__)

KEY_HEADER = "X-Gateway-Key"
# Most rejection reasons echoed back in one response; all are stored.
MAX_ERRORS_RETURNED = 100

@csrf_exempt
@require_POST
def gateway_readings(request):
    """Store a gateway's batch; 401 without a valid key, 400 when nothing in the body could be stored."""
    gateway = authenticate(request.headers.get(KEY_HEADER, ""))
    if gateway is None:
        return JsonResponse({"error": _("网关密钥缺失或无效:请在请求头 %(header)s 中提供管理员签发的密钥。")
                             % {"header": KEY_HEADER}}, status=401)
    message = Message(payload=request.body, topic=f"http:{gateway.code}", gateway_id=gateway.id)
    # A directory per request: one query, and never a stale sensor.
    result = ingest([message], SensorDirectory(), channel="http")
    body = {
        "gateway": gateway.code,
        "stored": result.readings_stored,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
        "time_replaced": result.time_replaced,
        "tickets_opened": [ticket.external_id for ticket in result.tickets_opened],
        "errors": [{"sensor": code, "reason": reason} for code, reason in result.rejections[:MAX_ERRORS_RETURNED]],
    }
    nothing_usable = result.rejected and not (result.readings_stored or result.duplicates)
    return JsonResponse(body, status=400 if nothing_usable else 200)
