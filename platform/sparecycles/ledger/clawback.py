"""Clawback: the tokens that reversed credit earned, taken back from later payouts.

Pure integer rules, shared by the closing service (services._clawback_step) and the
verifier (chain.ChainVerifier), so anyone can recompute every clawback from the journal.

- A reversal of credit that counted in an epoch already paid is a debt of the account
  that epoch paid. Its size is the share of that account's payout the reversed credit
  earned: of a payout P for credit C, reversing r more micro-credits after R already
  were costs floor(P·(R+r)/C) − floor(P·R/C). The floors are cumulative, so reversing all
  of C claws back exactly P, and the order of reversals changes nothing in the total.
- At each epoch close, right after the payout entry, one "clawback" entry publishes the
  debts claimed at that close and withholds from each indebted account min(debt owed,
  its payout in that epoch). The withheld tokens go to the treasury (not back into the
  emission, whose balance counts what the schedule has emitted). A debt larger than one
  payout carries over to the next ones. Balances already held are never debited.
- Credit reversed before its epoch closed never earned anything: the grant is linked to
  its epoch with no credit, so the epoch's basis is smaller and nothing is owed.

- The debt is withheld from the account that was paid, or, if that volunteer was since
  claimed into an account (volunteer_merge moved its tokens there), from that account:
  the "charged" account.

- Per project: an epoch paid by project shares (policy.split_by_project) paid each
  account a part of each project's allotment for its credit *in that project*. Reversed
  credit of project p claws back from the part p paid, against the account's credit in
  p: P_p and C_p in the formula above, one debt per (account, epoch, project). (Taking
  it from the account's whole payout would charge a cheat in a richly allotted project
  the rate of its poorer ones, and the other way round.) Epochs paid site-wide keep one
  debt per (account, epoch).

The clawback entry's data: {"epoch": i, "reversals": [[paid account, epoch, credit,
tokens, charged account]], "owed": [[account, owed after this entry]]} — reversals summed
per (paid account, epoch), sorted; owed for every account charged or withheld from, sorted.
A reversal of an epoch paid per project is [paid account, epoch, project, credit, tokens,
charged account], summed per (paid account, epoch, project); items sort by (account,
epoch, project), a site-wide item's project counting as "".
"""

from .policy import Schedule, project_payouts

CLAWBACK_KEYS = {"epoch", "reversals", "owed"}
DESTINATION = "treasury"
# {project: ({account: tokens that project's part paid it}, {account: its credit there})}
ProjectBooks = dict[str, tuple[dict[str, int], dict[str, int]]]


def clawback_books(epoch_data: dict, schedule: Schedule) -> ProjectBooks | None:
    """What each project paid each account in a closed epoch, from its journal data alone;
    None for an epoch paid site-wide (no "projects" in its data)."""
    if epoch_data.get("projects") is None:
        return None
    shares = schedule.governing(epoch_data["epoch"]).params.project_shares or ()
    credits = {code: [(account, credit) for account, credit in rows]
               for code, rows in epoch_data["projects"]}
    paid = project_payouts(epoch_data["emission"], shares=shares, credits=credits)
    return {code: (paid.get(code, {}), dict(credits[code])) for code in credits}


def clawback_item(code: str, epoch: int, project: str, credit: int, tokens: int,
                  charged: str) -> list:
    """One published reversal item: with its project if its epoch paid per project."""
    if project:
        return [code, epoch, project, credit, tokens, charged]
    return [code, epoch, credit, tokens, charged]


def item_key(item: list) -> tuple[str, int, str]:
    """(paid account, epoch, project or "") of a published reversal item."""
    return (item[0], item[1], item[2] if len(item) == 6 else "")


def clawback_tokens(*, paid: int, credit: int, reversed_before: int, reversed_now: int) -> int:
    """Tokens `reversed_now` micro-credits earned out of `paid` for `credit` (see above)."""
    if reversed_before < 0 or reversed_now < 0 or reversed_before + reversed_now > credit:
        raise ValueError(f"cannot reverse {reversed_now} after {reversed_before} of {credit}")
    if credit <= 0 or paid <= 0:
        return 0
    return (paid * (reversed_before + reversed_now) // credit
            - paid * reversed_before // credit)


def withheld(*, owed: dict[str, int], payouts: dict[str, int]) -> dict[str, int]:
    """What each indebted account gives up from this epoch's payouts."""
    return {code: min(debt, payouts[code]) for code, debt in sorted(owed.items())
            if debt > 0 and payouts.get(code, 0) > 0}
