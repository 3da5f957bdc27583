// Ledger pages: check Merkle proofs, entry hashes and the whole hash chain in the browser.
import { CheckError, sha256Hex, verifyJournal, verifyPayout } from "./merkle.mjs";

function statusFor(button) {
  return document.getElementById(button.getAttribute("aria-describedby"));
}

function say(status, state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) {
    let message = `the server answered ${response.status}`;
    try { message = (await response.json()).error.message; } catch { /* keep the status */ }
    throw new CheckError(message);
  }
  return response.json();
}

async function checkProof(button) {
  const status = statusFor(button);
  const shown = {
    epoch: Number(button.dataset.epoch),
    account: button.dataset.account,
    amount: Number(button.dataset.amount),
  };
  button.disabled = true;
  say(status, "pending", "Checking the proof in your browser…");
  try {
    const proof = await getJSON(button.dataset.proofUrl);
    const result = await verifyPayout(proof, shown);
    if (result.ok) {
      say(status, "ok", `Proof verified in your browser: this payout is included in epoch ` +
        `${shown.epoch}'s Merkle root ${result.root.slice(0, 12)}…, sealed in entry #${result.seq}.`);
    } else {
      say(status, "bad", `Proof check FAILED: ${result.reason}.`);
    }
  } catch (error) {
    say(status, "bad", `Could not check the proof: ${error.message}.`);
  } finally {
    button.disabled = false;
  }
}

async function checkEntry(button) {
  const status = statusFor(button);
  try {
    const canonical = document.getElementById("entry-canonical").textContent;
    const stored = document.getElementById("entry-hash").textContent.trim();
    const computed = await sha256Hex(canonical);
    if (computed === stored) {
      say(status, "ok", `Verified in your browser: SHA-256 of the content above is ${computed}.`);
    } else {
      say(status, "bad", `Mismatch: the content above hashes to ${computed}.`);
    }
  } catch (error) {
    say(status, "bad", `Could not check: ${error.message}.`);
  }
}

async function checkJournal(button) {
  const status = statusFor(button);
  button.disabled = true;
  say(status, "pending", "Downloading the journal…");
  try {
    const response = await fetch(button.dataset.checkJournal);
    if (!response.ok) throw new CheckError(`the server answered ${response.status}`);
    const text = await response.text();
    const result = await verifyJournal(text, (n) => say(status, "pending", `Checked ${n} entries…`));
    if (result.ok) {
      say(status, "ok", `Hash chain verified in your browser: ${result.entries} entries, ` +
        `head ${result.head.slice(0, 16)}…`);
    } else {
      say(status, "bad", `Broken at entry #${result.seq}: ${result.reason}.`);
    }
  } catch (error) {
    say(status, "bad", `Could not check the journal: ${error.message}.`);
  } finally {
    button.disabled = false;
  }
}

for (const button of document.querySelectorAll("[data-proof-url]")) {
  button.addEventListener("click", () => checkProof(button));
}
for (const button of document.querySelectorAll("[data-check-entry]")) {
  button.addEventListener("click", () => checkEntry(button));
}
for (const button of document.querySelectorAll("[data-check-journal]")) {
  button.addEventListener("click", () => checkJournal(button));
}
document.documentElement.dataset.ledgerReady = "true";
