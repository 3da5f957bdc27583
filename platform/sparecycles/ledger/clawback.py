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

The clawback entry's data: {"epoch": i, "reversals": [[paid account, epoch, credit,
tokens, charged account]], "owed": [[account, owed after this entry]]} — reversals summed
per (paid account, epoch), sorted; owed for every account charged or withheld from, sorted.
"""

CLAWBACK_KEYS = {"epoch", "reversals", "owed"}
DESTINATION = "treasury"


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
