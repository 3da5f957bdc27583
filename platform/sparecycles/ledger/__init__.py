"""Token rewards: double-entry, hash-chained books that anyone can verify.

- models.py     Account (volunteer-<id>, treasury, emission, burn), JournalEntry +
                JournalLine (lines sum to zero), ChainHead (the writers' lock),
                PolicyVersion, Epoch, EpochCredit (each CreditGrant in exactly one epoch),
                ReversalClaim (how each credit.CreditReversal was accounted, once).
- services.py   every write, under the chain-head lock: ledger_init, policy_announce,
                epoch_close / epochs_close_due (exactly once; a clawback entry after the
                payout when reversed credit is owed), tokens_transfer, tokens_burn.
- selectors.py  reads: volunteer_balance_micro, supply_summary, epochs, payouts, proofs,
                account history, the journal as JSON lines.
- policy.py     the public rules (epochs, halving, cap, pro-rata split), pure integers.
- chain.py      the rules every journal record must follow; verify.py runs them over the
                database (verify_ledger) or over a downloaded journal.jsonl.
- merkle.py     RFC 6962 tree over an epoch's payouts; static/ledger/merkle.mjs mirrors it.
- clawback.py   what reversed credit owes and what each payout withholds (docs/ledger.md).
- canonical.py  canonical JSON + SHA-256; units.py: micro-tokens and tokens_str.

Commands: close_epochs [--loop], verify_ledger [--file journal.jsonl] [--json], ledger_policy.
"""
