// Unit tests of the volunteer page's pure rules (static/volunteer/policy.js, settings.js).
// Run by tests/web/test_client_rules.py with `node --test`.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  backoffDelay, blockers, MAX_REST_MS, measuredDuty, meteredReason, restAfter,
} from "../../../static/volunteer/policy.js";
import { defaultSettings, normalizeSettings, SettingsStore } from "../../../static/volunteer/settings.js";

const DESKTOP = defaultSettings({ cores: 8, mobile: false });
const PHONE = defaultSettings({ cores: 8, mobile: true });
const VISIBLE = { hidden: false, battery: null, connection: null };
const keys = (list) => list.map((b) => b.key);

test("defaults leave one core free and follow BOINC on phones", () => {
  assert.equal(DESKTOP.workers, 7);
  assert.equal(defaultSettings({ cores: 1, mobile: false }).workers, 1);
  assert.equal(DESKTOP.duty, 100);
  assert.equal(DESKTOP.chargingOnly, false);
  assert.equal(PHONE.chargingOnly, true);
  assert.equal(PHONE.minBattery, 50);
  assert.equal(DESKTOP.background, true);
  assert.equal(PHONE.background, false);
  assert.equal(DESKTOP.pauseOnMetered, true);
  assert.equal(DESKTOP.wakeLock, false);
});

test("stored settings are clamped to what this device can do", () => {
  const device = { cores: 4 };
  const clean = normalizeSettings({ workers: 99, duty: 3, minBattery: 101, background: "yes" },
                                  DESKTOP, device);
  assert.equal(clean.workers, 4);
  assert.equal(clean.duty, 10);
  assert.equal(clean.minBattery, 95);
  assert.equal(clean.background, DESKTOP.background);   // not a boolean: the default
  assert.equal(normalizeSettings({ duty: 47 }, DESKTOP, device).duty, 45);
  assert.deepEqual(normalizeSettings(null, DESKTOP, { cores: 8 }), DESKTOP);
});

test("the store survives garbage and a storage that throws", () => {
  const broken = { getItem: () => "{not json", setItem: () => { throw new Error("full"); } };
  const store = new SettingsStore(broken, { cores: 2, mobile: false });
  assert.equal(store.load().workers, 1);
  assert.equal(store.save({ ...store.load(), duty: 30 }).duty, 30);
  const memory = new Map();
  const ok = new SettingsStore({ getItem: (k) => memory.get(k) ?? null,
                                 setItem: (k, v) => memory.set(k, v) }, { cores: 2, mobile: false });
  ok.save({ ...ok.load(), duty: 40, background: true });
  assert.equal(ok.load().duty, 40);
  assert.equal(ok.load().background, true);
});

test("a hidden page waits unless background computing is on", () => {
  const foreground = { ...DESKTOP, background: false };
  assert.deepEqual(keys(blockers(foreground, { ...VISIBLE, hidden: true })), ["hidden"]);
  assert.deepEqual(blockers(DESKTOP, { ...VISIBLE, hidden: true }), []);
  assert.deepEqual(blockers(foreground, VISIBLE), []);
});

test("battery rules apply only where the browser reports the battery", () => {
  const phone = { ...PHONE };
  assert.deepEqual(blockers(phone, VISIBLE), [], "no Battery Status API: nothing to wait for");
  const unplugged = { ...VISIBLE, battery: { charging: false, level: 0.9 } };
  assert.deepEqual(keys(blockers(phone, unplugged)), ["charging"]);
  const lowOnCharger = { ...VISIBLE, battery: { charging: true, level: 0.3 } };
  const low = blockers(phone, lowOnCharger);
  assert.deepEqual(keys(low), ["battery"]);
  assert.match(low[0].reason, /30%, below your 50% limit/);
  assert.deepEqual(blockers(phone, { ...VISIBLE, battery: { charging: true, level: 0.5 } }), []);
  assert.deepEqual(blockers({ ...phone, chargingOnly: false, minBattery: 0 }, unplugged), []);
});

test("metered connections pause only when the setting is on", () => {
  assert.equal(meteredReason(null), "");
  assert.equal(meteredReason({ type: "wifi", effectiveType: "4g" }), "");
  assert.match(meteredReason({ saveData: true }), /Data Saver/);
  assert.match(meteredReason({ type: "cellular", effectiveType: "4g" }), /mobile data/);
  assert.match(meteredReason({ effectiveType: "2g" }), /2G/);
  const cellular = { ...VISIBLE, connection: { type: "cellular" } };
  assert.deepEqual(keys(blockers(DESKTOP, cellular)), ["metered"]);
  assert.deepEqual(blockers({ ...DESKTOP, pauseOnMetered: false }, cellular), []);
});

test("the duty cycle rests busy * (100 - duty) / duty, capped", () => {
  assert.equal(restAfter(1000, 100), 0);
  assert.equal(restAfter(1000, 50), 1000);
  assert.equal(restAfter(1000, 25), 3000);
  assert.equal(restAfter(3_600_000, 10), MAX_REST_MS);
  assert.equal(restAfter(0, 10), 0);
});

test("reconnect backoff doubles to a cap, with equal jitter", () => {
  const low = (attempt) => backoffDelay(attempt, { random: () => 0 });
  const high = (attempt) => backoffDelay(attempt, { random: () => 1 });
  assert.deepEqual([0, 1, 2, 3].map(high), [1000, 2000, 4000, 8000]);
  assert.deepEqual([0, 1, 2].map(low), [500, 1000, 2000]);
  assert.equal(high(20), 30_000);
  assert.equal(low(20), 15_000);
});

test("measured duty is the busy share of the window", () => {
  const intervals = [{ start: 0, end: 100 }, { start: 300, end: 400 }, { start: 900, end: null }];
  assert.equal(measuredDuty(intervals, 0, 1000), 0.3);
  assert.equal(measuredDuty(intervals, 500, 1000), 0.2);   // only the open interval
  assert.equal(measuredDuty([], 0, 0), 0);
});
