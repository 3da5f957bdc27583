"""A volunteer's public cross-project id (cpid), the key stats sites add up credit by.

BOINC exports md5(cross_project_id + email_addr) (sched/db_dump.cpp, write_user), so the
same person under the same email at two projects that share a cross_project_id (BOINC
clients copy it between projects) gets one cpid. Here the email counts only once it is
verified; without one the cpid is md5 of the cross_project_id alone, which never changes.
BOINC stores email addresses in lower case; so does this hash.
"""

import hashlib


def cpid(*, cross_project_id: str, email: str | None, email_verified: bool) -> str:
    email = (email or "").strip().lower() if email_verified else ""
    return hashlib.md5((cross_project_id + email).encode(), usedforsecurity=False).hexdigest()


def volunteer_cpid(volunteer) -> str:
    """The cpid the exports give `volunteer` (reads volunteer.user's email)."""
    user = volunteer.user
    return cpid(cross_project_id=volunteer.cross_project_id,
                email=user.email if user is not None else None,
                email_verified=volunteer.email_verified_at is not None)
