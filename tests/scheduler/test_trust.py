"""scheduler.trust: dispatch asks validation (above it) through what validation registers."""

import random

import pytest
from django.core.exceptions import ImproperlyConfigured

from sparecycles.scheduler import trust as trust_module
from sparecycles.scheduler.trust import trust
from sparecycles.validation import credibility, spot_checks

pytestmark = pytest.mark.django_db


def test_validation_registers_its_answers():
    answers = trust()
    assert answers.standings is credibility.standings
    assert answers.device_spot_check_rate is spot_checks.device_spot_check_rate
    assert answers.spot_check_issue is spot_checks.spot_check_issue
    assert answers.spot_check_apps is spot_checks.spot_check_apps


def test_a_new_device_is_not_established_and_gets_the_new_device_rate(make_device, settings):
    device = make_device().device
    [standing] = trust().standings([device.pk]).values()
    assert (standing.confirmed, standing.established) == (0, False)
    rate = trust().device_spot_check_rate(confirmed=0, app_rate=0.0)
    assert rate == pytest.approx(settings.SPARECYCLES["SPOT_CHECK_NEW"])
    assert trust().spot_check_issue(device=device, app_id=10**9, rng=random.Random(1)) is None


def test_dispatch_without_validation_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(trust_module, "_trust", None)
    with pytest.raises(ImproperlyConfigured, match="sparecycles.validation"):
        trust()
