"""The Merkle tree is RFC 6962's: checked against the recursive definition, proofs via RFC 9162."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparecycles.ledger.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    leaf_bytes,
    leaf_hash,
    node_hash,
    verify_inclusion,
)


def rfc6962_root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(rfc6962_root(leaves[:k]), rfc6962_root(leaves[k:]))


def rfc6962_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return rfc6962_path(m, leaves[:k]) + [rfc6962_root(leaves[k:])]
    return rfc6962_path(m - k, leaves[k:]) + [rfc6962_root(leaves[:k])]


def leaves_of(n: int) -> list[bytes]:
    return [leaf_hash(leaf_bytes(epoch=3, account=f"volunteer-{i + 1}", amount=i + 1))
            for i in range(n)]


def test_leaf_encoding_is_documented_canonical_json():
    assert leaf_bytes(epoch=3, account="volunteer-7", amount=1_500_000) == \
        b'{"account":"volunteer-7","amount":1500000,"epoch":3}'
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


def test_empty_tree_root():
    assert MerkleTree([]).root == EMPTY_ROOT == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("n", range(1, 40))
def test_root_and_paths_match_rfc6962(n):
    leaves = leaves_of(n)
    tree = MerkleTree(leaves)
    assert tree.root == rfc6962_root(leaves).hex()
    for m in range(n):
        assert tree.audit_path(m) == [h.hex() for h in rfc6962_path(m, leaves)]
        assert verify_inclusion(index=m, size=n, leaf=leaves[m], path=tree.audit_path(m),
                                root=tree.root)


@given(n=st.integers(min_value=1, max_value=300), data=st.data())
def test_a_proof_fails_for_any_other_leaf_index_or_size(n, data):
    leaves = leaves_of(n)
    tree = MerkleTree(leaves)
    m = data.draw(st.integers(min_value=0, max_value=n - 1))
    path = tree.audit_path(m)
    assert verify_inclusion(index=m, size=n, leaf=leaves[m], path=path, root=tree.root)
    other = leaf_hash(leaf_bytes(epoch=3, account=f"volunteer-{m + 1}", amount=m + 2))
    assert not verify_inclusion(index=m, size=n, leaf=other, path=path, root=tree.root)
    if n > 1:
        wrong = data.draw(st.integers(min_value=0, max_value=n - 1).filter(lambda i: i != m))
        assert not verify_inclusion(index=wrong, size=n, leaf=leaves[m], path=path,
                                    root=tree.root)
    if path:
        bent = list(path)
        bent[0] = ("0" if bent[0][0] != "0" else "1") + bent[0][1:]
        assert not verify_inclusion(index=m, size=n, leaf=leaves[m], path=bent, root=tree.root)


def test_proof_refuses_garbage():
    leaves = leaves_of(3)
    tree = MerkleTree(leaves)
    assert not verify_inclusion(index=0, size=3, leaf=leaves[0], path=["zz"], root=tree.root)
    assert not verify_inclusion(index=5, size=3, leaf=leaves[0], path=tree.audit_path(0),
                                root=tree.root)
