"""Every admin changelist opens for a superuser, and records of evidence are read-only."""
import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import reverse

from gridmap.supervision import CitizenRating, KpiTarget


@pytest.mark.django_db
def test_every_changelist_opens(client):
    client.force_login(User.objects.create_superuser("root", password="x"))

    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert client.get(url).status_code == 200, url


@pytest.mark.django_db
def test_ratings_read_only_targets_editable(client):
    client.force_login(User.objects.create_superuser("root", password="x"))

    rating_add = reverse("admin:gridmap_citizenrating_add")
    target_add = reverse("admin:gridmap_kpitarget_add")

    assert CitizenRating in admin.site._registry
    assert KpiTarget in admin.site._registry
    assert client.get(rating_add).status_code == 403
    assert client.get(target_add).status_code == 200
