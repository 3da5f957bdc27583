import pytest
from django.core.exceptions import ValidationError

from sparecycles.accounts.services import claim_code_issue, device_claim, volunteer_update
from sparecycles.credit.models import MICRO, CreditGrant
from sparecycles.credit.selectors import volunteer_credit_micro
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.volunteers.models import Team, Volunteer
from sparecycles.volunteers.services import (
    device_connect,
    team_create,
    team_join,
    team_leave,
    team_update,
)

pytestmark = pytest.mark.django_db


def earn(device):
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    replica_report(device=device, task_id=replica.task_id, ok=True, output={"x": 1})


def test_claiming_this_browser_keeps_past_credit(make_batch, owner):
    make_batch(count=1)
    session = device_connect(token=None)
    earn(session.device)
    anonymous = session.device.volunteer
    device = device_claim(user=owner, token=session.new_token)
    volunteer = Volunteer.objects.get(user=owner)
    assert device.volunteer == volunteer
    assert volunteer_credit_micro(volunteer_id=volunteer.pk) == MICRO
    assert CreditGrant.objects.get().volunteer == volunteer
    assert Volunteer.objects.get(pk=anonymous.pk).merged_into == volunteer


def test_claiming_another_device_by_code(owner):
    other = device_connect(token=None).device
    code = claim_code_issue(device=other).code
    assert len(code) == 8
    device_claim(user=owner, code=code.lower())
    other.refresh_from_db()
    assert other.volunteer.user == owner
    with pytest.raises(ValidationError, match="unknown or expired"):
        device_claim(user=owner, code=code)  # single use


def test_a_device_of_another_account_cannot_be_claimed(owner, django_user_model):
    thief = django_user_model.objects.create_user("thief", password="pw-thief-123")
    session = device_connect(token=None, user=owner)
    with pytest.raises(ValidationError, match="another account"):
        device_claim(user=thief, token=session.new_token)


def test_profile_name_and_anonymity():
    volunteer = device_connect(token=None).device.volunteer
    volunteer_update(volunteer=volunteer, name="  Ada   L. ", show_anonymous=True)
    assert volunteer.name == "Ada L." and volunteer.public_name == "Anonymous"
    with pytest.raises(ValidationError):
        volunteer_update(volunteer=volunteer, name="   ", show_anonymous=False)


def test_teams_create_join_leave_and_edit():
    founder = device_connect(token=None).device.volunteer
    member = device_connect(token=None).device.volunteer
    team = team_create(founder=founder, name="Prime Hunters", description="We sieve.")
    assert team.slug == "prime-hunters"
    with pytest.raises(ValidationError, match="already a team"):
        team_create(founder=member, name="prime hunters")
    team_join(volunteer=member, team=team)
    team_join(volunteer=member, team=team)  # idempotent
    assert Team.objects.get().member_count == 2
    with pytest.raises(ValidationError, match="founder"):
        team_update(team=team, editor=member, description="hijacked")
    team_update(team=team, editor=founder, description="We sieve faster.")
    team_leave(volunteer=member)
    assert Team.objects.get().member_count == 1
    assert Team.objects.get().description == "We sieve faster."


def test_claiming_moves_the_anonymous_token_balance(make_batch, owner):
    import datetime as dt

    from django.utils import timezone

    from sparecycles.ledger.selectors import volunteer_balance_micro
    from sparecycles.ledger.services import epochs_close_due, ledger_init
    from sparecycles.ledger.verify import verify_ledger

    ledger_init(now=timezone.now())  # genesis today: the grant below falls in epoch 0
    make_batch(count=1)
    session = device_connect(token=None)
    earn(session.device)
    anonymous_id = session.device.volunteer_id
    epochs_close_due(now=timezone.now() + dt.timedelta(days=2))
    paid = volunteer_balance_micro(anonymous_id)
    assert paid > 0
    device_claim(user=owner, token=session.new_token)
    assert volunteer_balance_micro(Volunteer.objects.get(user=owner)) == paid
    assert volunteer_balance_micro(anonymous_id) == 0
    assert verify_ledger().ok
