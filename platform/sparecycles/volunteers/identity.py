"""A volunteer's cpid: the id stats sites add up cross-project totals by.

BOINC exports, for every user, `<cpid>` = md5(cross_project_id + email_addr) (sched/
db_dump.cpp, write_user; BOINC stores email_addr lower-cased): projects that know the same
email address under the same cross_project_id give the same cpid, and BOINCstats, Free-DC
and BOINC Combined Stats add the person's credit up across projects under it. Here the
email counts only once it is verified (an unverified address could be someone else's);
without one the cpid is md5(cross_project_id) alone: still stable, still unique, just not
joined with other projects. The export and the account page both call `cpid()`; nothing
else computes one.
"""

import hashlib

from .models import Volunteer


def cpid_from(*, cross_project_id: str, verified_email: str | None) -> str:
    """The cpid from its parts (for bulk readers that fetched the columns themselves)."""
    email = (verified_email or "").strip().lower()
    return hashlib.md5((cross_project_id + email).encode(), usedforsecurity=False).hexdigest()


def verified_email(volunteer: Volunteer) -> str | None:
    """The account's email address if it is verified now, else None."""
    user = volunteer.user if volunteer.user_id else None
    if user is None or not user.email or volunteer.email_verified_at is None:
        return None
    return user.email


def cpid(volunteer: Volunteer) -> str:
    """md5(cross_project_id + email) with a verified email, else md5(cross_project_id)."""
    return cpid_from(cross_project_id=volunteer.cross_project_id,
                     verified_email=verified_email(volunteer))
