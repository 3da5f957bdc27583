// Unit tests of the controls volunteers ask for (static/volunteer/policy.js, settings.js):
// pause for a while, a daily schedule, battery hysteresis, Compute Pressure throttling.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  BatteryHold, blockers, clockTime, effectiveDuty, inSchedule, pauseEnd,
} from "../../../static/volunteer/policy.js";
import { defaultSettings, normalizeSettings } from "../../../static/volunteer/settings.js";

const DESKTOP = defaultSettings({ cores: 8, mobile: false });
const keys = (list) => list.map((b) => b.key);
const NOW = new Date(2026, 11, 6, 14, 30).getTime();   // 14:30 local
const ENV = { hidden: false, battery: null, connection: null, now: NOW, minute: 14 * 60 + 30 };

test("a pause holds computing until its end, and says until when", () => {
  const paused = { ...DESKTOP, pauseUntil: pauseEnd(1, NOW) };
  const [found] = blockers(paused, ENV);
  assert.equal(found.key, "paused-until");
  assert.match(found.reason, /until 15:30/);
  assert.deepEqual(blockers(paused, { ...ENV, now: NOW + 3600_000 }), []);
  assert.equal(pauseEnd(4, NOW), NOW + 4 * 3600_000);
  const tomorrow = new Date(pauseEnd("tomorrow", NOW));
  assert.equal(tomorrow.getDate(), 7);
  assert.equal(clockTime(tomorrow.getTime()), "00:00");
});

test("the daily schedule may wrap past midnight", () => {
  assert.equal(inSchedule(23 * 60, "22:00", "07:00"), true);
  assert.equal(inSchedule(3 * 60, "22:00", "07:00"), true);
  assert.equal(inSchedule(7 * 60, "22:00", "07:00"), false);
  assert.equal(inSchedule(12 * 60, "09:00", "17:00"), true);
  assert.equal(inSchedule(17 * 60, "09:00", "17:00"), false);
  assert.equal(inSchedule(5, "08:00", "08:00"), true);   // from == to: all day
  const night = { ...DESKTOP, scheduleOn: true, scheduleFrom: "22:00", scheduleTo: "07:00" };
  assert.deepEqual(keys(blockers(night, ENV)), ["schedule"]);
  assert.match(blockers(night, ENV)[0].reason, /22:00 to 07:00/);
  assert.deepEqual(blockers(night, { ...ENV, minute: 23 * 60 }), []);
  assert.deepEqual(blockers({ ...night, scheduleOn: false }, ENV), []);
});

test("battery hysteresis: resume only after the hold, or at once when plugged in", () => {
  const settings = { ...DESKTOP, minBattery: 20, batteryHoldMin: 10 };
  const hold = new BatteryHold();
  const battery = (level, charging = false) => ({ level, charging });
  assert.equal(hold.until(settings, battery(0.5), NOW), 0);           // never low: no hold
  assert.equal(hold.until(settings, battery(0.19), NOW), 0);          // low: the battery rule holds
  assert.deepEqual(keys(blockers(settings, { ...ENV, battery: battery(0.19) })), ["battery"]);
  const end = hold.until(settings, battery(0.2), NOW + 1000);          // back at the limit
  assert.equal(end, NOW + 1000 + 10 * 60_000);
  const env = { ...ENV, now: NOW + 60_000, battery: battery(0.21), batteryHoldUntil: end };
  assert.deepEqual(keys(blockers(settings, env)), ["battery-hold"]);
  assert.match(blockers(settings, env)[0].reason, /back above 20%.*plugged in/);
  // Dropping below again restarts the hold from scratch.
  hold.until(settings, battery(0.19), NOW + 120_000);
  assert.equal(hold.until(settings, battery(0.2), NOW + 180_000), NOW + 180_000 + 600_000);
  assert.equal(hold.until(settings, battery(0.22), NOW + 780_000), 0);  // held long enough
  assert.equal(hold.until(settings, battery(0.22), NOW + 780_001), 0);
  // Plugged in: no wait.
  const plugged = new BatteryHold();
  plugged.until(settings, battery(0.1), NOW);
  assert.equal(plugged.until(settings, battery(0.25, true), NOW + 1), 0);
  assert.equal(plugged.until(settings, battery(0.25, false), NOW + 2), 0);   // the low is forgotten
  // A hold of 0 minutes switches it off.
  const off = new BatteryHold();
  off.until({ ...settings, batteryHoldMin: 0 }, battery(0.1), NOW);
  assert.equal(off.until({ ...settings, batteryHoldMin: 0 }, battery(0.3), NOW + 1), 0);
});

test("compute pressure, when chosen, caps the CPU use: 50% serious, 20% critical", () => {
  const on = { ...DESKTOP, duty: 100, pressure: true };
  assert.equal(DESKTOP.pressure, false);
  assert.equal(effectiveDuty(on, "serious"), 50);
  assert.equal(effectiveDuty(on, "critical"), 20);
  assert.equal(effectiveDuty({ ...on, duty: 30 }, "serious"), 30);
  assert.equal(effectiveDuty({ ...on, duty: 10 }, "critical"), 10);
  assert.equal(effectiveDuty(on, "fair"), 100);
  assert.equal(effectiveDuty(on, null), 100);
  assert.equal(effectiveDuty({ ...on, pressure: false }, "critical"), 100);
  // Throttling, never a stop: no blocker whatever the pressure.
  assert.deepEqual(blockers(on, { ...ENV, pressure: "critical" }), []);
});

test("the new settings are normalised like the old ones", () => {
  const clean = normalizeSettings({ scheduleFrom: "25:00", scheduleTo: "06:30", batteryHoldMin: 99,
                                    pauseUntil: -5, pressure: "yes", scheduleOn: true },
                                  DESKTOP, { cores: 8 });
  assert.equal(clean.scheduleFrom, DESKTOP.scheduleFrom);
  assert.equal(clean.scheduleTo, "06:30");
  assert.equal(clean.batteryHoldMin, 60);
  assert.equal(clean.pauseUntil, 0);
  assert.equal(clean.pressure, false);
  assert.equal(clean.scheduleOn, true);
  assert.equal(normalizeSettings({ batteryHoldMin: 12 }, DESKTOP, { cores: 8 }).batteryHoldMin, 10);
});
