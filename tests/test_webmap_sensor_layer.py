"""The planner map offers the sensor layer, hidden until switched on."""
import json

import pytest

from tests.test_iot_support import make_sensor
from tests.test_webmap import make_ticket, page, planner_client  # noqa: F401

LAYER_NAME_JSON = json.dumps("物联网传感器")


@pytest.mark.django_db
def test_sensor_layer_listed_when_sensors_exist(planner_client):  # noqa: F811
    make_ticket("T1")
    make_sensor("LANE-<b>1</b>", "lane_radar")

    html = page(planner_client).content.decode()

    # folium writes the layer name as JSON with \u escapes.
    assert LAYER_NAME_JSON in html
    # The sensor code reaches the page escaped, never as markup.
    assert "LANE-<b>1</b>" not in html


@pytest.mark.django_db
def test_no_sensor_layer_without_sensors(planner_client):  # noqa: F811
    make_ticket("T1")

    html = page(planner_client).content.decode()

    assert LAYER_NAME_JSON not in html
