"""The planner map names the p-value method of the hotspot run it shows."""
import pytest

from tests.test_webmap import make_run, make_ticket, page, planner_client  # noqa: F401


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"p_method": "adaptive"}, "置换伪 p 值(显著单元追加置换)"),
        ({"p_method": "z_sim"}, "置换分布正态近似 p 值"),
        # Runs stored before the method was recorded used pseudo p-values.
        ({}, "置换伪 p 值,FDR 校正"),
    ],
)
def test_hotspot_summary_names_method(planner_client, params, expected):  # noqa: F811
    make_ticket("T1")
    make_run(**params)

    html = page(planner_client).content.decode()

    assert expected in html
