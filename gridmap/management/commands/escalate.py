from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from gridmap.escalation import run_escalation


class Command(BaseCommand):
    help = _("执行一次超时升级与黄牌/红牌判定;重复执行不会重复升级或亮牌。可由 cron 每 5 分钟运行")

    def add_arguments(self, parser):
        parser.add_argument("--no-email", action="store_true", help=_("只写站内通知,不发送邮件"))

    def handle(self, *args, **options):
        result = run_escalation(send_email=not options["no_email"])
        self.stdout.write(_("升级 %(escalated)s 件,亮牌 %(carded)s 件,发送邮件 %(emails)s 封,耗时 %(s).2f 秒") % {
            "escalated": result.escalated, "carded": result.carded, "emails": result.emails,
            "s": result.duration_s})
