import os
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.translation import gettext as _

from gridmap.roles import Role

# One starter account per role; the administrator is a Django superuser.
STARTER_ACCOUNTS = (
    ("admin", Role.ADMIN),
    ("planner", Role.PLANNER),
    ("leader", Role.LEADER),
    ("gridhead", Role.GRID_HEAD),
    ("handler", Role.HANDLER),
)


class Command(BaseCommand):
    help = _("创建各角色的初始账号(已存在则保留),并把新密码写入仅本人可读的凭据文件")

    def add_arguments(self, parser):
        parser.add_argument("--credentials", required=True, help=_("凭据文件路径,权限 600"))

    def handle(self, *args, **options):
        path = Path(options["credentials"])
        path.parent.mkdir(parents=True, exist_ok=True)
        known = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        user_model = get_user_model()
        created = []
        with transaction.atomic():
            for username, role in STARTER_ACCOUNTS:
                if user_model.objects.filter(username=username).exists():
                    continue
                password = secrets.token_urlsafe(12)
                user = user_model.objects.create_user(
                    username=username, password=password,
                    is_staff=role == Role.ADMIN, is_superuser=role == Role.ADMIN,
                )
                group, _created = Group.objects.get_or_create(name=role.value)
                user.groups.add(group)
                created.append(f"{username}\t{role.value}\t{password}")
        if created:
            lines = [line for line in known if line.split("\t", 1)[0] not in {c.split("\t", 1)[0] for c in created}]
            path.write_text("\n".join(lines + created) + "\n", encoding="utf-8")
            os.chmod(path, 0o600)
        self.stdout.write(_("新建账号 %(created)s 个;账号与密码见 %(path)s") % {"created": len(created), "path": path})
