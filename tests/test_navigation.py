"""Header links and the home page follow the roles the pages themselves check."""
import re

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from gridmap.roles import Role
from spatial.models import ImportBatch


def header_nav(html):
    """Return the header's navigation markup of a page."""
    return html.split('<nav class="site-nav"', 1)[1].split("</nav>", 1)[0]


def login(client, username, *roles):
    user = User.objects.create_user(username, password="x")
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role.value)[0])
    client.force_login(user)
    return user


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "home_url_name"),
    [
        (Role.LEADER, "webmap:dashboard:home"),
        (Role.PLANNER, "webmap:planner-map"),
        (Role.HANDLER, "gridmap:queue"),
        (Role.GRID_HEAD, "gridmap:queue"),
    ],
)
def test_home_redirects_by_role(client, role, home_url_name):
    login(client, "user", role)

    response = client.get("/")

    assert response.status_code == 302
    assert response.url == reverse(home_url_name)


@pytest.mark.django_db
def test_home_without_role_forbidden(client):
    login(client, "nobody")

    response = client.get("/")

    assert response.status_code == 403


@pytest.mark.django_db
def test_home_anonymous_goes_to_login(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.LEADER, Role.PLANNER, Role.HANDLER, Role.GRID_HEAD])
def test_every_header_link_opens(client, role):
    login(client, "user", role)
    nav = header_nav(client.get(reverse("gridmap:standards")).content.decode())
    links = re.findall(r'href="([^"]+)"', nav)

    assert links
    for url in links:
        assert client.get(url).status_code == 200, url


@pytest.mark.django_db
def test_grid_head_sees_no_dashboard_link(client):
    login(client, "head", Role.GRID_HEAD)

    nav = header_nav(client.get(reverse("gridmap:standards")).content.decode())

    assert 'href="/dashboard/"' not in nav
    assert 'href="/routing/patrol/"' in nav


@pytest.mark.django_db
def test_simulated_banner_on_every_page(client):
    login(client, "leader", Role.LEADER)
    ImportBatch.objects.create(file_name="demo.csv", file_sha256="0" * 64, profile="12345", simulated=True,
                               rows_imported=10)

    html = client.get(reverse("gridmap:standards")).content.decode()

    assert "banner-simulated" in html


@pytest.mark.django_db
def test_no_banner_without_simulated_data(client):
    login(client, "leader", Role.LEADER)

    html = client.get(reverse("gridmap:standards")).content.decode()

    assert "banner-simulated" not in html
