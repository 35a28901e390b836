"""Make ticket events append-only in the database, and seed the starting configuration.

The trigger rejects UPDATE and DELETE on gridmap_ticketevent and
gridmap_eventphoto whatever the client (admin, shell, raw SQL); TRUNCATE by
an operator stays possible. The seeded departments, routing rules, deadline
rules and rectification standards are a starting point that administrators
edit in the admin; the data is a copy so that this migration does not change
when the code does.
"""
from django.db import migrations

APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION gridmap_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'gridmap: % on % is refused, ticket events are append-only', TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ticketevent_append_only BEFORE UPDATE OR DELETE ON gridmap_ticketevent
    FOR EACH ROW EXECUTE FUNCTION gridmap_refuse_change();
CREATE TRIGGER eventphoto_append_only BEFORE UPDATE OR DELETE ON gridmap_eventphoto
    FOR EACH ROW EXECUTE FUNCTION gridmap_refuse_change();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS ticketevent_append_only ON gridmap_ticketevent;
DROP TRIGGER IF EXISTS eventphoto_append_only ON gridmap_eventphoto;
DROP FUNCTION IF EXISTS gridmap_refuse_change();
"""

DEPARTMENTS = [
    ("fire", "消防救援大队", "lead", False),
    ("housing", "住房和城乡建设局", "partner", False),
    ("urban", "城市管理局", "partner", False),
    ("emergency", "应急管理局", "partner", False),
    ("market", "市场监督管理局", "other", False),
    ("power", "供电公司", "other", False),
    ("property", "物业服务企业", "other", True),
]

# (name, priority, category, lead, partners)
ROUTING_RULES = [
    ("消防通道堵塞", 10, "fire_lane", "fire", ["urban", "property"]),
    ("电动车违规充电", 20, "ebike_charging", "fire", ["housing", "power", "property"]),
    ("消防设施故障", 30, "facility_fault", "fire", ["housing", "property"]),
    ("消防间距不足", 40, "separation", "fire", ["housing", "emergency"]),
    ("易燃物品堆放", 50, "flammable_storage", "fire", ["emergency", "market"]),
    ("电气线路隐患", 60, "electrical", "fire", ["power", "emergency"]),
]

# (name, priority, category, property_only, milestone, amount, unit)
DEADLINE_RULES = [
    ("消防通道堵塞4小时内到场处置", 10, "fire_lane", False, "on_site", 4, "hours"),
    ("物业类工单1个工作日内书面答复", 20, "", True, "reply", 1, "working_days"),
    ("易燃物品堆放2个工作日内整改", 30, "flammable_storage", False, "rectified", 2, "working_days"),
    ("电动车违规充电3个工作日内整改", 40, "ebike_charging", False, "rectified", 3, "working_days"),
    ("电气线路隐患3个工作日内整改", 50, "electrical", False, "rectified", 3, "working_days"),
    ("消防设施故障5个工作日内整改", 60, "facility_fault", False, "rectified", 5, "working_days"),
    ("消防间距不足20个工作日内整改", 70, "separation", False, "rectified", 20, "working_days"),
    ("其他工单5个工作日内办结", 1000, "", False, "rectified", 5, "working_days"),
]

# (category, title, requirements, regulation, evidence)
STANDARDS = [
    ("fire_lane", "消防车通道与疏散通道畅通",
     "清除占用消防车通道、楼梯间、疏散走道和安全出口的车辆与杂物;消防车通道划线并设置禁停标识。",
     "《中华人民共和国消防法》第二十八条:不得占用、堵塞、封闭疏散通道、安全出口、消防车通道。",
     "清理前后同一位置的现场照片;设置的标识照片;物业或管理单位的书面承诺。"),
    ("ebike_charging", "电动自行车停放充电规范",
     "拆除飞线充电线路;楼道、门厅、楼梯间内不得停放或充电;引导到集中充电点。",
     "《高层民用建筑消防安全管理规定》第三十七条;各地电动自行车管理规定。",
     "拆除线路与清理楼道的照片;集中充电点位置说明。"),
    ("facility_fault", "消防设施完好有效",
     "维修或更换故障的消火栓、灭火器、喷淋、烟感、应急照明和疏散指示;恢复消防水压。",
     "《中华人民共和国消防法》第十六条:按照国家标准配置消防设施、器材,定期检验、维修。",
     "维修记录或检测报告;设施恢复正常的照片或读数。"),
    ("separation", "防火间距符合规范",
     "拆除占用防火间距的违章搭建,或采取防火墙等替代措施并经消防部门认可。",
     "《中华人民共和国消防法》第二十八条;《建筑设计防火规范》GB 50016。",
     "拆除或改造后的照片;主管部门的核查意见。"),
    ("flammable_storage", "易燃易爆物品规范存放",
     "清运居住场所和公共区域堆放的易燃物品;液化气瓶等按规定存放使用。",
     "《中华人民共和国消防法》第二十三条。",
     "清运后的现场照片;经营单位的整改记录。"),
    ("electrical", "电气线路安全",
     "拆除私拉乱接线路,更换老化线路,配电箱加锁并保持周边无可燃物。",
     "《中华人民共和国消防法》第二十七条:线路的敷设、维护保养必须符合消防技术标准和管理规定。",
     "整改后线路与配电箱的照片;电工或供电单位的检查记录。"),
    ("other", "其他消防安全隐患",
     "按承办部门的现场核查意见消除隐患。",
     "《中华人民共和国消防法》及相关规定。",
     "整改前后的现场照片与书面答复。"),
]


def seed(apps, schema_editor):
    department_model = apps.get_model("gridmap", "Department")
    rule_model = apps.get_model("gridmap", "RoutingRule")
    deadline_model = apps.get_model("gridmap", "DeadlineRule")
    standard_model = apps.get_model("gridmap", "RectificationStandard")
    departments = {}
    for code, name, role, handles_property in DEPARTMENTS:
        departments[code], _created = department_model.objects.get_or_create(
            code=code, defaults={"name": name, "role": role, "handles_property": handles_property})
    for name, priority, category, lead, partners in ROUTING_RULES:
        if rule_model.objects.filter(name=name).exists():
            continue
        rule = rule_model.objects.create(name=name, priority=priority, category=category, lead=departments[lead])
        rule.partners.set([departments[code] for code in partners])
    for name, priority, category, property_only, milestone, amount, unit in DEADLINE_RULES:
        deadline_model.objects.get_or_create(name=name, defaults={
            "priority": priority, "category": category, "property_only": property_only,
            "milestone": milestone, "amount": amount, "unit": unit})
    for category, title, requirements, regulation, evidence in STANDARDS:
        standard_model.objects.get_or_create(category=category, defaults={
            "title": title, "requirements": requirements, "regulation": regulation, "evidence": evidence})


class Migration(migrations.Migration):
    dependencies = [
        ("gridmap", "0002_grid_workflow"),
    ]

    operations = [
        migrations.RunSQL(APPEND_ONLY_SQL, DROP_SQL),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
