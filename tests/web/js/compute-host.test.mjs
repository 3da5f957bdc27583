// What the page accepts from the compute frame (static/volunteer/compute-host.js): run by
// tests/web/test_client_rules.py with `node --test`. The frame runs owners' code, so every
// message from it is hostile until checked.
import assert from "node:assert/strict";
import { test } from "node:test";

import { checkedResult } from "../../../static/volunteer/compute-host.js";

const CONTEXT = { taskId: "t1", maxOutputBytes: 64, elapsedMs: 12, pageHashed: true };

test("a valid output is passed on as the frame's JSON text, under the page's task id and time", () => {
  const result = checkedResult({ status: "ok", outputJson: '{"n":12345678901234567890}',
                                 task_id: "t1", elapsed_ms: 999999 }, CONTEXT);
  assert.deepEqual(result, { type: "result", task_id: "t1", elapsed_ms: 12, status: "ok",
                             outputJson: '{"n":12345678901234567890}' });
});

test("output that is not JSON, or that would break out of the result frame, is an error", () => {
  for (const outputJson of ['{"a":1}, "task_id": "other"', "", "NaN", "{", undefined, 5]) {
    const result = checkedResult({ status: "ok", outputJson }, CONTEXT);
    assert.equal(result.status, "error", String(outputJson));
    assert.equal(result.outputJson, undefined);
  }
});

test("output over the limit is reported as an error, counted in UTF-8 bytes", () => {
  const big = JSON.stringify({ s: "é".repeat(30) });   // 32 characters of 2 bytes each
  const result = checkedResult({ status: "ok", outputJson: big }, CONTEXT);
  assert.equal(result.status, "error");
  assert.match(result.error, /output too large \(\d+ bytes; the limit is 64\)/);
  assert.equal(checkedResult({ status: "ok", outputJson: '"x"' }, CONTEXT).status, "ok");
});

test("error kinds are limited; the frame cannot claim a hash mismatch the page checked", () => {
  const claimed = checkedResult({ status: "error", error: "x", kind: "hash_mismatch" }, CONTEXT);
  assert.equal(claimed.kind, "app");
  const unchecked = checkedResult({ status: "error", error: "x", kind: "hash_mismatch" },
                                  { ...CONTEXT, pageHashed: false });
  assert.equal(unchecked.kind, "hash_mismatch");
  assert.equal(checkedResult({ status: "error", error: "x", kind: "evil" }, CONTEXT).kind, "app");
  assert.equal(checkedResult({ status: "error", error: "x", kind: "internal" }, CONTEXT).kind,
               "internal");
});

test("error messages are text of bounded length; anything else is unknown", () => {
  assert.equal(checkedResult({ status: "error", error: "y".repeat(5000) }, CONTEXT).error.length,
               2000);
  assert.equal(checkedResult({ status: "error", error: { toString: () => "z" } }, CONTEXT).error,
               "unknown error");
  assert.equal(checkedResult({ status: "weird" }, CONTEXT).status, "error");
});

test("output nested deeper than the protocol's 64 levels is an error, not a poisoned frame", () => {
  // Red team (batch extension): an owner's app returning a 2000-deep list made the server's
  // JSON parser give up on the whole `results` frame, so every result riding in it (the
  // page's backlog after a reconnect) went unacked, again on each resend.
  const nested = (depth) => "[".repeat(depth) + "]".repeat(depth);
  const roomy = { ...CONTEXT, maxOutputBytes: 1 << 20 };
  assert.equal(checkedResult({ status: "ok", outputJson: nested(64) }, roomy).status, "ok");
  for (const outputJson of [nested(65), `{"a":${nested(2000)}}`]) {
    const result = checkedResult({ status: "ok", outputJson }, roomy);
    assert.equal(result.status, "error");
    assert.match(result.error, /nested deeper than 64 levels/);
  }
});
