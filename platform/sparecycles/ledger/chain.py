"""Journal records and the rules every record must follow, checked one at a time.

A record is one entry as published in journal.jsonl:

    {"seq": 7, "at": <µs since 1970>, "kind": "epoch", "memo": "...", "data": {...},
     "lines": [{"account": "emission", "amount": -14400000000}, ...],
     "prev": <hash of entry 6>, "hash": <SHA-256 of this record without "hash">}

`ChainVerifier` replays records in order with nothing but the journal: hashes
and links, balanced lines, no negative balance, policy announcements only for
future epochs, each epoch's emission and pro-rata split recomputed from the
policy and the published credits, each epoch's Merkle root, and each clawback
recomputed from the payouts and credits of the epochs it reverses (clawback.py):
an account that owes tokens and is paid must have them withheld right after.
"""

import re
from collections import defaultdict
from dataclasses import dataclass, field

from .canonical import ZERO_HASH, canonical_json, sha256_hex
from .clawback import CLAWBACK_KEYS, DESTINATION, clawback_tokens, item_key, withheld
from .merkle import leaf_bytes, leaf_hash, merkle_root
from .policy import (
    PROJECT_CODE,
    PolicyError,
    PolicyRecord,
    Schedule,
    project_payouts,
    shares_check,
    split_by_project,
    split_pro_rata,
)

RECORD_KEYS = {"seq", "at", "kind", "memo", "data", "lines", "prev", "hash"}
EPOCH_KEYS = {"epoch", "start", "end", "policy", "emission", "credit_total", "credits",
              "merkle_root", "recipients"}
POLICY_KEYS = {"version", "effective_from_epoch", "starts_at", "epoch_seconds",
               "initial_emission_micro", "halving_epochs", "max_supply_micro"}
# Optional keys, present only once the operator sets project shares (policy) and in the
# epochs such a policy governs (their credit per project, for the per-project split).
POLICY_SHARES_KEY = "project_shares"
EPOCH_PROJECTS_KEY = "projects"
ACCOUNT_CODE = re.compile(r"^(treasury|emission|burn|volunteer-[1-9][0-9]{0,17})$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
HOLDERS = ("treasury", "volunteer-")  # accounts that hold tokens and may send them


def record_hash(record: dict) -> str:
    """SHA-256 of the canonical JSON of the record without its own "hash"."""
    return sha256_hex(canonical_json({k: v for k, v in record.items() if k != "hash"}))


def payout_leaves(epoch: int, lines: list[dict]) -> list[bytes]:
    return [leaf_hash(leaf_bytes(epoch=epoch, account=line["account"], amount=line["amount"]))
            for line in lines if line["amount"] > 0]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Broken(Exception):
    """Raised inside the verifier; becomes a Problem naming the entry."""


@dataclass
class Problem:
    seq: int | None          # the first broken entry, or None for a problem outside the chain
    message: str
    account: str | None = None

    def __str__(self) -> str:
        where = f"entry #{self.seq}" if self.seq is not None else (
            f"account {self.account}" if self.account else "ledger")
        return f"{where}: {self.message}"


@dataclass
class ChainVerifier:
    expected_seq: int = 1
    prev_hash: str = ZERO_HASH
    balances: dict = field(default_factory=lambda: defaultdict(int))
    policies: list = field(default_factory=list)
    last_epoch: int = -1
    emitted: int = 0
    burned: int = 0
    entries: int = 0
    # Clawback state: each paid epoch's volunteer payouts and credits, what was reversed
    # of them so far, what each account still owes, and the last entry's payouts.
    epoch_books: dict = field(default_factory=dict)
    reversed: dict = field(default_factory=lambda: defaultdict(int))
    owed: dict = field(default_factory=lambda: defaultdict(int))
    clawed_back: int = 0
    last_payouts: dict | None = None
    clawback_due: int | None = None

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.policies)

    def feed(self, record: dict) -> Problem | None:
        """Check one record; on the first problem return it (and stop feeding)."""
        seq = record.get("seq") if isinstance(record, dict) else None
        where = self.expected_seq if not _is_int(seq) or seq != self.expected_seq else seq
        try:
            self._check(record)
        except Broken as exc:
            return Problem(seq=where, message=str(exc))
        return None

    # -- the rules --------------------------------------------------------------------
    def _check(self, record: dict) -> None:
        if not isinstance(record, dict) or set(record) != RECORD_KEYS:
            raise Broken(f"a record has exactly the keys {sorted(RECORD_KEYS)}")
        if not _is_int(record["seq"]) or record["seq"] != self.expected_seq:
            raise Broken(f"expected entry #{self.expected_seq} here, found #{record['seq']!r} "
                         "(an entry is missing, duplicated or renumbered)")
        if record["prev"] != self.prev_hash:
            raise Broken("its previous-entry hash does not match the entry before it")
        try:
            recomputed = record_hash(record)
        except (TypeError, ValueError) as exc:
            raise Broken(f"not canonical JSON content: {exc}") from None
        if record["hash"] != recomputed:
            raise Broken(f"its content hashes to {recomputed}, not to the stored {record['hash']}")
        if not _is_int(record["at"]) or not isinstance(record["memo"], str) \
                or not isinstance(record["data"], dict) or not isinstance(record["lines"], list):
            raise Broken("at must be an integer, memo a string, data an object, lines a list")

        lines = record["lines"]
        codes = []
        for line in lines:
            if not isinstance(line, dict) or set(line) != {"account", "amount"} \
                    or not isinstance(line["account"], str) or not _is_int(line["amount"]) \
                    or line["amount"] == 0 or not ACCOUNT_CODE.match(line["account"]):
                raise Broken(f"malformed line {line!r}")
            codes.append(line["account"])
        if codes != sorted(set(codes)):
            raise Broken("lines must name distinct accounts, sorted by code")
        if sum(line["amount"] for line in lines) != 0:
            raise Broken(f"its lines sum to {sum(line['amount'] for line in lines)}, not 0")

        if self.expected_seq == 1 and record["kind"] != "policy":
            raise Broken("the first entry must announce the genesis policy")
        kind = record["kind"]
        if self.clawback_due is not None and kind != "clawback":
            raise Broken(f"epoch {self.clawback_due} paid accounts that owe tokens, but no "
                         "clawback entry follows its payout")
        payouts, self.last_payouts = self.last_payouts, None
        if kind == "policy":
            self._check_policy(record)
        elif kind == "epoch":
            self._check_epoch(record)
        elif kind in ("transfer", "burn"):
            self._check_movement(record)
        elif kind == "clawback":
            self._check_clawback(record, payouts)
        else:
            raise Broken(f"unknown kind {kind!r}")

        for line in lines:
            self.balances[line["account"]] += line["amount"]
            if line["account"] != "emission" and self.balances[line["account"]] < 0:
                raise Broken(f"account {line['account']} would go negative")
        self.entries += 1
        self.expected_seq += 1
        self.prev_hash = record["hash"]

    def _check_policy(self, record: dict) -> None:
        data = record["data"]
        if record["lines"]:
            raise Broken("a policy announcement moves no tokens")
        plain = {k: v for k, v in data.items() if k != POLICY_SHARES_KEY}
        if set(plain) != POLICY_KEYS or not all(_is_int(v) for v in plain.values()):
            raise Broken(f"policy data has exactly the integer keys {sorted(POLICY_KEYS)} "
                         f"(and optionally {POLICY_SHARES_KEY})")
        if POLICY_SHARES_KEY in data:
            try:
                shares_check(data[POLICY_SHARES_KEY])
            except PolicyError as exc:
                raise Broken(f"invalid policy: {exc}") from None
            if not all(isinstance(pair, list) for pair in data[POLICY_SHARES_KEY]):
                raise Broken("project shares are lists of [project, parts per million]")
        policy = PolicyRecord.from_data(data)
        try:
            policy.params.check()
        except PolicyError as exc:
            raise Broken(f"invalid policy: {exc}") from None
        if policy.version != len(self.policies) + 1:
            raise Broken(f"policy version {policy.version} out of order")
        if policy.version == 1:
            if policy.effective_from_epoch != 0:
                raise Broken("the genesis policy governs from epoch 0")
        else:
            schedule = self.schedule
            in_progress = schedule.epoch_at(record["at"])
            if policy.effective_from_epoch <= max(in_progress, self.last_epoch):
                raise Broken(f"policy v{policy.version} announced during epoch {in_progress} "
                             f"cannot take effect from epoch {policy.effective_from_epoch}: "
                             "only from a future epoch")
            if policy.starts_at_us != schedule.window(policy.effective_from_epoch).start_us:
                raise Broken("the policy's start time is not the start of its first epoch")
        self.policies.append(policy)

    def _check_epoch(self, record: dict) -> None:
        data = record["data"]
        index = data.get("epoch")
        if not _is_int(index) or index != self.last_epoch + 1:
            raise Broken(f"expected epoch {self.last_epoch + 1}, found {index!r}")
        window = self.schedule.window(index)
        shares = window.policy.params.project_shares
        keys = EPOCH_KEYS if shares is None else EPOCH_KEYS | {EPOCH_PROJECTS_KEY}
        if set(data) != keys:
            raise Broken(f"epoch data has exactly the keys {sorted(keys)}")
        if (data["start"], data["end"], data["policy"]) != (
                window.start_us, window.end_us, window.policy.version):
            raise Broken(f"epoch {index}'s window or policy version does not follow the policy")
        if record["at"] < window.end_us:
            raise Broken(f"epoch {index} was closed before it ended")
        emission = self.schedule.emission(index, emitted_before=self.emitted)
        if data["emission"] != emission:
            raise Broken(f"epoch {index} emitted {data['emission']!r}, the policy says {emission}")
        credits = data["credits"]
        if not isinstance(credits, list) or not all(
                isinstance(c, list) and len(c) == 2 and isinstance(c[0], str)
                and c[0].startswith("volunteer-") and ACCOUNT_CODE.match(c[0])
                and _is_int(c[1]) and c[1] > 0 for c in credits):
            raise Broken("credits must be [volunteer account, positive credit] pairs")
        if [c[0] for c in credits] != sorted({c[0] for c in credits}):
            raise Broken("credits must name distinct accounts, sorted by code")
        if data["credit_total"] != sum(c[1] for c in credits):
            raise Broken("credit_total is not the sum of the credits")
        books = None
        if shares is not None:
            by_project = self._project_credits(data[EPOCH_PROJECTS_KEY], credits)
            expected = {"emission": -emission,
                        **split_by_project(emission, shares=shares, credits=by_project)}
            paid_by_project = project_payouts(emission, shares=shares, credits=by_project)
            books = {code: (paid_by_project.get(code, {}), dict(rows))
                     for code, rows in by_project.items()}
            expected = {code: amount for code, amount in expected.items() if amount}
        elif emission == 0:
            expected = {}
        elif not credits:
            expected = {"emission": -emission, "treasury": emission}
        else:
            expected = {"emission": -emission,
                        **split_pro_rata(emission, [(c[0], c[1]) for c in credits])}
        actual = {line["account"]: line["amount"] for line in record["lines"]}
        if actual != expected:
            raise Broken(f"epoch {index}'s payouts are not the pro-rata split of its emission")
        leaves = payout_leaves(index, record["lines"])
        if data["recipients"] != len(leaves):
            raise Broken("recipients is not the number of payouts")
        root = merkle_root(leaves)
        if data["merkle_root"] != root:
            raise Broken(f"epoch {index}'s Merkle root should be {root}")
        self.last_epoch = index
        self.emitted += emission
        paid = {line["account"]: line["amount"] for line in record["lines"]
                if line["amount"] > 0 and line["account"].startswith("volunteer-")}
        self.epoch_books[index] = (paid, {c[0]: c[1] for c in credits}, books)
        self.last_payouts = paid
        if any(self.owed[code] > 0 for code in paid):
            self.clawback_due = index

    def _check_clawback(self, record: dict, payouts: dict | None) -> None:
        data = record["data"]
        if set(data) != CLAWBACK_KEYS:
            raise Broken(f"clawback data has exactly the keys {sorted(CLAWBACK_KEYS)}")
        if payouts is None or data["epoch"] != self.last_epoch:
            raise Broken("a clawback entry must directly follow the payout of its epoch")
        items = data["reversals"]
        if not isinstance(items, list) or not all(
                isinstance(i, list) and len(i) in (5, 6)
                and all(isinstance(c, str) and c.startswith("volunteer-")
                        and ACCOUNT_CODE.match(c) for c in (i[0], i[-1]))
                and (len(i) == 5 or isinstance(i[2], str) and PROJECT_CODE.match(i[2]))
                and all(_is_int(v) for v in (i[1], i[-3], i[-2])) and i[-3] > 0
                for i in items):
            raise Broken("reversals must be [paid volunteer account, epoch, (project,) credit, "
                         "tokens, charged volunteer account] items")
        keys = [item_key(i) for i in items]
        if keys != sorted(set(keys)):
            raise Broken("reversals must name distinct (account, epoch, project) items, sorted")
        touched = set()
        for item in items:
            code, index, project = item_key(item)
            credit, tokens, charged = item[-3:]
            if not 0 <= index < self.last_epoch or index not in self.epoch_books:
                raise Broken(f"credit of epoch {index} cannot be clawed back after epoch "
                             f"{self.last_epoch}: only credit of an earlier, paid epoch")
            paid, credits, books = self.epoch_books[index]
            if (books is None) != (project == ""):
                raise Broken(f"epoch {index} paid {'site-wide' if books is None else 'per project'}"
                             f": its reversals are claimed "
                             f"{'without' if books is None else 'per'} project")
            if project:
                paid, credits = books.get(project, ({}, {}))
            where = f"epoch {index}" + (f" ({project})" if project else "")
            before = self.reversed[(code, index, project)]
            if before + credit > credits.get(code, 0):
                raise Broken(f"{code} had {credits.get(code, 0)} µcredit in {where}; "
                             f"{before + credit} cannot be reversed")
            expected = clawback_tokens(paid=paid.get(code, 0), credit=credits[code],
                                       reversed_before=before, reversed_now=credit)
            if tokens != expected:
                raise Broken(f"{credit} µcredit of {code} in {where} earned {expected} "
                             f"µ, not {tokens}")
            self.reversed[(code, index, project)] += credit
            self.owed[charged] += tokens
            touched.add(charged)
        taken = withheld(owed={c: d for c, d in self.owed.items() if d > 0}, payouts=payouts)
        expected_lines = {code: -amount for code, amount in taken.items()}
        if taken:
            expected_lines[DESTINATION] = sum(taken.values())
        actual = {line["account"]: line["amount"] for line in record["lines"]}
        if actual != expected_lines:
            raise Broken(f"epoch {self.last_epoch}'s clawback should withhold {taken} "
                         "(what each account owes, up to its payout) for the treasury")
        if not items and not taken:
            raise Broken("an empty clawback entry")
        for code, amount in taken.items():
            self.owed[code] -= amount
            touched.add(code)
        self.clawed_back += sum(taken.values())
        if data["owed"] != [[code, self.owed[code]] for code in sorted(touched)]:
            raise Broken("owed does not match the debts claimed and withheld so far")
        self.clawback_due = None

    def finish(self) -> Problem | None:
        """A problem only visible at the end of the journal, or None."""
        if self.clawback_due is not None:
            return Problem(seq=self.expected_seq, message=(
                f"epoch {self.clawback_due} paid accounts that owe tokens, but no clawback "
                "entry follows its payout"))
        return None

    @staticmethod
    def _project_credits(projects, credits) -> dict[str, list[tuple[str, int]]]:
        """The epoch's credit per project, checked against its credit per volunteer."""
        if not isinstance(projects, list):
            raise Broken("projects must be a list of [project, [[volunteer, credit], ...]]")
        by_project: dict[str, list[tuple[str, int]]] = {}
        totals: dict[str, int] = defaultdict(int)
        for item in projects:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                    and PROJECT_CODE.match(item[0]) and isinstance(item[1], list)):
                raise Broken(f"malformed project credit {item!r}")
            rows = item[1]
            if not rows or not all(
                    isinstance(c, list) and len(c) == 2 and isinstance(c[0], str)
                    and c[0].startswith("volunteer-") and ACCOUNT_CODE.match(c[0])
                    and _is_int(c[1]) and c[1] > 0 for c in rows):
                raise Broken(f"{item[0]}'s credits must be [volunteer account, positive "
                             "credit] pairs")
            if [c[0] for c in rows] != sorted({c[0] for c in rows}):
                raise Broken(f"{item[0]}'s credits must name distinct accounts, sorted")
            by_project[item[0]] = [(c[0], c[1]) for c in rows]
            for code, credit in rows:
                totals[code] += credit
        if [item[0] for item in projects] != sorted(by_project):
            raise Broken("projects must be distinct and sorted by code")
        if dict(totals) != {c[0]: c[1] for c in credits}:
            raise Broken("the credit per project does not add up to the credit per volunteer")
        return by_project

    def _check_movement(self, record: dict) -> None:
        lines = record["lines"]
        if record["data"] != {} or len(lines) != 2:
            raise Broken("a transfer or burn has two lines and no data")
        source = next(line for line in lines if line["amount"] < 0)
        target = next(line for line in lines if line["amount"] > 0)
        if not source["account"].startswith(HOLDERS):
            raise Broken(f"{source['account']} cannot send tokens")
        if record["kind"] == "burn":
            if target["account"] != "burn":
                raise Broken("a burn sends tokens to the burn account")
            self.burned += target["amount"]
        elif not target["account"].startswith(HOLDERS):
            raise Broken(f"{target['account']} cannot receive a transfer")

    def totals(self) -> dict:
        holders = sum(v for k, v in self.balances.items() if k.startswith(HOLDERS))
        return {"entries": self.entries, "emitted": self.emitted, "burned": self.burned,
                "supply": holders, "head_seq": self.expected_seq - 1, "head_hash": self.prev_hash,
                "epochs": self.last_epoch + 1, "clawed_back": self.clawed_back,
                "owed": sum(d for d in self.owed.values() if d > 0)}
