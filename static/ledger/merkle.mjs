// Re-derive the ledger's hashes in the browser (crypto.subtle SHA-256), exactly as the
// server does: canonical JSON, RFC 6962 leaf/node prefixes, RFC 9162 inclusion proofs.

const encoder = new TextEncoder();

export class CheckError extends Error {}

function subtle() {
  if (!globalThis.crypto?.subtle) {
    throw new CheckError("this browser offers SHA-256 only on https:// pages (or localhost); " +
      "open the ledger over https to check proofs here");
  }
  return globalThis.crypto.subtle;
}

// Canonical JSON: keys sorted, no whitespace, integers only (all below 2^53).
export function canonicalJSON(value) {
  if (value === null || typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new CheckError(`not an integer: ${value}`);
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJSON).join(",")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJSON(value[k])}`).join(",")}}`;
  }
  throw new CheckError(`no canonical JSON for ${typeof value}`);
}

export async function sha256(bytes) {
  return new Uint8Array(await subtle().digest("SHA-256", bytes));
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(text) {
  if (typeof text !== "string" || !/^([0-9a-f]{2})*$/.test(text)) {
    throw new CheckError(`not a hex hash: ${String(text).slice(0, 20)}`);
  }
  return Uint8Array.from(text.match(/../g) ?? [], (h) => parseInt(h, 16));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
}

export function leafBytes(epoch, account, amount) {
  return encoder.encode(canonicalJSON({ account, amount, epoch }));
}
export const leafHash = (bytes) => sha256(concat(Uint8Array.of(0), bytes));
export const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));
export const sha256Hex = async (text) => toHex(await sha256(encoder.encode(text)));

// RFC 9162 section 2.1.3.2.
export async function verifyInclusion(index, size, leaf, path, rootHex) {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
    return false;
  }
  let fn = index, sn = size - 1, r = leaf;
  for (const p of path.map(fromHex)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && toHex(r) === rootHex;
}

// Check a payout the page shows against the server's proof. The leaf is rebuilt from the
// page's own numbers; the root must be the one sealed in the epoch's journal entry, whose
// hash is recomputed here too.
export async function verifyPayout(proof, shown) {
  const leaf = leafBytes(shown.epoch, shown.account, shown.amount);
  if (!(await verifyInclusion(proof.leaf_index, proof.tree_size, await leafHash(leaf),
                              proof.audit_path, proof.merkle_root))) {
    return { ok: false, reason: `the payout of ${shown.amount} µ to ${shown.account} is not in ` +
             `epoch ${shown.epoch}'s Merkle tree ${String(proof.merkle_root).slice(0, 12)}…` };
  }
  const entryHash = await sha256Hex(proof.entry.canonical);
  if (entryHash !== proof.entry.hash) {
    return { ok: false, reason: `the sealing entry hashes to ${entryHash.slice(0, 12)}…, ` +
             `not to ${String(proof.entry.hash).slice(0, 12)}…` };
  }
  const record = JSON.parse(proof.entry.canonical);
  if (record.kind !== "epoch" || record.seq !== proof.entry.seq ||
      record.data.epoch !== shown.epoch || record.data.merkle_root !== proof.merkle_root) {
    return { ok: false, reason: "the journal entry does not seal this Merkle root for this epoch" };
  }
  if (!record.lines.some((l) => l.account === shown.account && l.amount === shown.amount)) {
    return { ok: false, reason: "the journal entry does not pay this amount to this account" };
  }
  return { ok: true, root: proof.merkle_root, seq: proof.entry.seq, entryHash };
}

// The hash chain of a whole journal.jsonl text: seq, prev links, hashes, balanced lines.
export async function verifyJournal(text, onProgress = () => {}) {
  let prev = "0".repeat(64), seq = 0;
  const lines = text.split("\n").filter((l) => l.trim());
  for (const line of lines) {
    let record;
    try { record = JSON.parse(line); } catch { return { ok: false, seq: seq + 1, reason: "not JSON" }; }
    seq += 1;
    if (record.seq !== seq) return { ok: false, seq, reason: `expected entry #${seq}, found #${record.seq}` };
    if (record.prev !== prev) return { ok: false, seq, reason: "its link to the previous entry is broken" };
    const { hash, ...content } = record;
    const computed = await sha256Hex(canonicalJSON(content));
    if (computed !== hash) return { ok: false, seq, reason: `its content hashes to ${computed.slice(0, 12)}…, not ${String(hash).slice(0, 12)}…` };
    const sum = record.lines.reduce((n, l) => n + BigInt(l.amount), 0n);
    if (sum !== 0n) return { ok: false, seq, reason: `its lines sum to ${sum}, not 0` };
    prev = hash;
    if (seq % 200 === 0) onProgress(seq);
  }
  return { ok: true, entries: seq, head: prev };
}
