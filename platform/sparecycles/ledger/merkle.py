"""The Merkle tree that seals an epoch's payouts (RFC 6962 / RFC 9162 shape).

    leaf bytes  = canonical JSON {"account": code, "amount": micro, "epoch": index}
    leaf hash   = SHA-256(0x00 || leaf bytes)
    node hash   = SHA-256(0x01 || left hash || right hash)
    root of []  = SHA-256("")       root of [x] = leaf hash of x
    root of n>1 = node(root of the first k leaves, root of the rest), k = the
                  largest power of two smaller than n.

Leaves are the epoch entry's positive lines in their order in the entry (sorted
by account code). An inclusion proof is RFC 9162's audit path, checked with the
algorithm of its section 2.1.3.2 (`verify_inclusion`, mirrored in
static/ledger/merkle.mjs).
"""

import hashlib

from .canonical import canonical_json

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def leaf_bytes(*, epoch: int, account: str, amount: int) -> bytes:
    return canonical_json({"account": account, "amount": amount, "epoch": epoch})


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Bottom-up levels; an unpaired last node moves up unchanged (= RFC 6962's split)."""
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        above = [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        if len(below) % 2:
            above.append(below[-1])
        levels.append(above)
    return levels


class MerkleTree:
    """Built once per epoch: the root, and an audit path for any leaf in O(log n)."""

    def __init__(self, leaves: list[bytes]):
        self.size = len(leaves)
        self._levels = _levels(leaves) if leaves else []

    @property
    def root(self) -> str:
        return self._levels[-1][0].hex() if self.size else EMPTY_ROOT

    def audit_path(self, index: int) -> list[str]:
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} is outside a tree of {self.size}")
        path = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(level[sibling].hex())
            index //= 2
        return path


def merkle_root(leaves: list[bytes]) -> str:
    return MerkleTree(leaves).root


def verify_inclusion(*, index: int, size: int, leaf: bytes, path: list[str], root: str) -> bool:
    """RFC 9162 section 2.1.3.2: does `leaf` (a leaf hash) sit at `index` in the tree `root`?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    try:
        hashes = [bytes.fromhex(p) for p in path]
    except ValueError:
        return False
    for p in hashes:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r.hex() == root
