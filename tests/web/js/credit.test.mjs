// The volunteer page's credit text (static/volunteer/credit.js) matches the server's filter.
import assert from "node:assert/strict";
import { test } from "node:test";

import { creditMicroOf, formatCreditMicro } from "../../../static/volunteer/credit.js";

test("six decimals always: tiny credit is above zero, and the width never jumps", () => {
  assert.equal(formatCreditMicro(0), "0.000000");
  assert.equal(formatCreditMicro(31), "0.000031");
  assert.equal(formatCreditMicro(1), "0.000001");
  assert.equal(formatCreditMicro(1_234_500_000), "1,234.500000");
  assert.equal(formatCreditMicro(-250_000), "-0.250000");
});

test("credit_micro wins; a bare credit number still works", () => {
  assert.equal(creditMicroOf({ credit: 0.000031, credit_micro: 31 }), 31);
  assert.equal(creditMicroOf({ credit: 1234.5 }), 1_234_500_000);
  assert.equal(creditMicroOf({ credit: 0.000031 }), 31);
  assert.equal(creditMicroOf({ tokens: "1" }), null);
  assert.equal(creditMicroOf({ credit: "garbage" }), null);
  assert.equal(creditMicroOf(undefined), null);
});
