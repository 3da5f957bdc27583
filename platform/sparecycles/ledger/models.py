"""The token ledger: double-entry books in integer micro-tokens, hash-chained.

Rows here change only through ledger.services, and only under the chain-head
lock, so the chain never forks and every balance equals the sum of its lines.
"""

from django.db import models
from django.db.models import Q

from .canonical import ZERO_HASH, to_us
from .policy import PolicyParams, PolicyRecord


class Account(models.Model):
    class Kind(models.TextChoices):
        VOLUNTEER = "volunteer", "Volunteer"
        TREASURY = "treasury", "Treasury"
        EMISSION = "emission", "Emission"   # the source of every token; its balance is -emitted
        BURN = "burn", "Burn"               # tokens sent here are gone for good

    # Public name in the journal: "treasury", "emission", "burn" or "volunteer-<id>".
    code = models.CharField(max_length=40, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The account outlives its volunteer row: the journal must keep naming it.
    volunteer = models.OneToOneField(
        "volunteers.Volunteer", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="token_account",
    )
    # A cache of the sum of the account's lines, kept in the same transaction.
    balance_micro = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="emission") | Q(balance_micro__gte=0),
                name="ledger_account_never_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @staticmethod
    def volunteer_code(volunteer_id: int) -> str:
        return f"volunteer-{volunteer_id}"


class ChainHead(models.Model):
    """The singleton row every writer locks first: the latest entry's number and hash."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=ZERO_HASH)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="ledger_chainhead_singleton")]

    def __str__(self) -> str:
        return f"head #{self.seq} {self.hash[:12]}"


class JournalEntry(models.Model):
    """One balanced movement; `hash` = SHA-256 of its canonical JSON, which includes prev_hash."""

    class Kind(models.TextChoices):
        POLICY = "policy", "Policy announced"
        EPOCH = "epoch", "Epoch payout"
        TRANSFER = "transfer", "Transfer"
        BURN = "burn", "Burn"
        # Follows an epoch's payout: tokens withheld from it for reversed credit (clawback.py).
        CLAWBACK = "clawback", "Clawback"

    seq = models.PositiveBigIntegerField(unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField()
    memo = models.CharField(max_length=200, blank=True)
    # Integers and strings only (canonical JSON): policy parameters, epoch seal, credits.
    data = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        verbose_name_plural = "journal entries"

    def __str__(self) -> str:
        return f"entry #{self.seq} ({self.kind})"


class JournalLine(models.Model):
    """A signed amount on one account; an entry's lines sum to zero."""

    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveIntegerField()
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lines")
    amount_micro = models.BigIntegerField()

    class Meta:
        ordering = ["entry", "position"]
        constraints = [
            models.UniqueConstraint(fields=["entry", "position"], name="ledger_line_position"),
            models.UniqueConstraint(fields=["entry", "account"],
                                    name="ledger_line_one_per_account"),
            models.CheckConstraint(condition=~Q(amount_micro=0), name="ledger_line_not_zero"),
        ]
        indexes = [models.Index(fields=["account", "entry"])]

    def __str__(self) -> str:
        return f"{self.amount_micro:+d} µ on {self.account_id}"


class PolicyVersion(models.Model):
    """A published reward policy; it governs epochs from effective_from_epoch on."""

    version = models.PositiveIntegerField(unique=True)
    effective_from_epoch = models.PositiveIntegerField()
    starts_at = models.DateTimeField()
    epoch_seconds = models.PositiveIntegerField()
    initial_emission_micro = models.BigIntegerField()
    halving_epochs = models.PositiveIntegerField()
    max_supply_micro = models.BigIntegerField()
    # [["project-<id>", parts per million], ...] or null: one site-wide split by credit.
    project_shares = models.JSONField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    announced_at = models.DateTimeField()
    entry = models.OneToOneField(JournalEntry, on_delete=models.PROTECT, related_name="policy")

    class Meta:
        ordering = ["version"]

    def __str__(self) -> str:
        return f"policy v{self.version} from epoch {self.effective_from_epoch}"

    def record(self) -> PolicyRecord:
        return PolicyRecord(
            version=self.version, effective_from_epoch=self.effective_from_epoch,
            starts_at_us=to_us(self.starts_at),
            params=PolicyParams(epoch_seconds=self.epoch_seconds,
                                initial_emission_micro=self.initial_emission_micro,
                                halving_epochs=self.halving_epochs,
                                max_supply_micro=self.max_supply_micro,
                                project_shares=None if self.project_shares is None else
                                tuple(tuple(pair) for pair in self.project_shares)),
        )


class Epoch(models.Model):
    """A closed reward epoch. The unique index is the claim: an epoch is paid at most once."""

    index = models.PositiveIntegerField(unique=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    policy_version = models.PositiveIntegerField()
    credit_micro = models.BigIntegerField(default=0)
    emission_micro = models.BigIntegerField(default=0)
    recipients = models.PositiveIntegerField(default=0)
    merkle_root = models.CharField(max_length=64, blank=True)
    # Null only inside the closing transaction, before the payout entry is written.
    entry = models.OneToOneField(
        JournalEntry, null=True, on_delete=models.PROTECT, related_name="epoch"
    )
    closed_at = models.DateTimeField()

    class Meta:
        ordering = ["-index"]

    def __str__(self) -> str:
        return f"epoch {self.index}"


class EpochCredit(models.Model):
    """Which epoch a credit grant counted in: every grant in exactly one epoch."""

    grant = models.OneToOneField(
        "credit.CreditGrant", on_delete=models.PROTECT, related_name="ledger_epoch_credit"
    )
    epoch = models.ForeignKey(Epoch, on_delete=models.PROTECT, related_name="credits")
    # Copied from the grant (grants never change) so an epoch's totals need no join.
    volunteer = models.ForeignKey(
        "volunteers.Volunteer", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    amount_micro = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["epoch", "volunteer"])]

    def __str__(self) -> str:
        return f"grant {self.grant_id} in epoch {self.epoch_id}"


class ReversalClaim(models.Model):
    """How the ledger accounted one credit reversal, exactly once (ledger.clawback).

    At each epoch close every new credit.CreditReversal is claimed: if its grant was linked
    to the closing epoch without its credit (the reversal came first), it simply left that
    epoch's credit basis (BASIS); if its grant's epoch had already paid, it is a DEBT of the
    account that was paid, worth the tokens that credit earned, published in the clawback
    entry (`entry`) that follows the payout and deducted from this and later payouts.
    """

    class Kind(models.TextChoices):
        BASIS = "basis", "Left the epoch's credit basis"
        DEBT = "debt", "Debt from a paid epoch"

    reversal = models.OneToOneField(
        "credit.CreditReversal", on_delete=models.PROTECT, related_name="ledger_claim"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    closed_in = models.ForeignKey(Epoch, on_delete=models.PROTECT, related_name="reversal_claims")
    credit_epoch = models.ForeignKey(Epoch, on_delete=models.PROTECT, related_name="+")
    # The account the reversed credit was paid to, and the one the debt is withheld from:
    # the same, unless that volunteer was claimed into an account (volunteer_merge moved
    # its tokens there), whose payouts then repay it.
    account = models.ForeignKey(Account, null=True, on_delete=models.PROTECT,
                                related_name="reversal_claims")
    charged = models.ForeignKey(Account, null=True, on_delete=models.PROTECT,
                                related_name="charged_claims")
    credit_micro = models.BigIntegerField()   # the credit reversed
    tokens_micro = models.BigIntegerField(default=0)   # the debt it created
    entry = models.ForeignKey(JournalEntry, null=True, on_delete=models.PROTECT,
                              related_name="reversal_claims")

    class Meta:
        ordering = ["reversal"]
        indexes = [models.Index(fields=["account", "credit_epoch"]),
                   models.Index(fields=["charged", "kind"])]
        constraints = [
            models.CheckConstraint(condition=Q(credit_micro__gte=0) & Q(tokens_micro__gte=0),
                                   name="ledger_claim_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} claim of reversal {self.reversal_id} in epoch {self.closed_in_id}"
