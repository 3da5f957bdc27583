// When this device may compute, and how hard: pure rules, unit-tested with node.
//
// Inputs are a snapshot of the device (visibility, battery, connection) as the
// browser reports it; null for an API the browser does not have, in which case
// the rule that needs it cannot apply (and the page says so).

export const MAX_REST_MS = 10 * 60_000;
const SLOW_CONNECTIONS = new Set(["slow-2g", "2g"]);

/** "14:05" for a Date.now() value, in the device's time zone. */
export function clockTime(ms) {
  const date = new Date(ms);
  return `${String(date.getHours()).padStart(2, "0")}:${String(date.getMinutes()).padStart(2, "0")}`;
}

function minutesOf(hhmm) {
  const [h, m] = hhmm.split(":").map(Number);
  return h * 60 + m;
}

/** Whether `minute` (since local midnight) lies in the daily window [from, to); it may wrap
 * past midnight ("22:00"–"07:00"); from == to means all day. */
export function inSchedule(minute, from, to) {
  const start = minutesOf(from);
  const end = minutesOf(to);
  if (start === end) return true;
  return start < end ? minute >= start && minute < end : minute >= start || minute < end;
}

/** When "pause for N hours" / "until tomorrow" ends: a Date.now() value. */
export function pauseEnd(choice, now = Date.now()) {
  if (choice === "tomorrow") {
    const date = new Date(now);
    date.setHours(24, 0, 0, 0);   // the next local midnight
    return date.getTime();
  }
  const hours = Number(choice);
  return now + (Number.isFinite(hours) && hours > 0 ? hours : 1) * 3600_000;
}

/**
 * Battery hysteresis (BOINC's hold before resuming): once the battery fell below the
 * limit, computing resumes only after the charge has stayed at or above it for
 * `batteryHoldMin` minutes, or at once when the device is plugged in. Without it a phone
 * at the limit flaps between computing and waiting with every percent.
 */
export class BatteryHold {
  constructor() {
    this.wasLow = false;
    this.okSince = 0;
  }

  /** The Date.now() value computing waits for; 0 when the hold does not apply. */
  until(settings, battery, now) {
    if (!battery || settings.minBattery <= 0 || settings.batteryHoldMin <= 0) {
      this.wasLow = false;
      this.okSince = 0;
      return 0;
    }
    if (Math.round(battery.level * 100) < settings.minBattery) {
      this.wasLow = true;          // the battery rule itself holds computing back
      this.okSince = 0;
      return 0;
    }
    if (!this.wasLow) return 0;
    if (battery.charging) {        // plugged in: no reason to wait
      this.wasLow = false;
      this.okSince = 0;
      return 0;
    }
    if (!this.okSince) this.okSince = now;
    const end = this.okSince + settings.batteryHoldMin * 60_000;
    if (now >= end) {
      this.wasLow = false;
      this.okSince = 0;
      return 0;
    }
    return end;
  }
}

/**
 * The CPU share computing may use under the browser's Compute Pressure reading
 * ("nominal" | "fair" | "serious" | "critical", or null without the API): throttling, not
 * stopping (the volunteer's own computing is what raises the pressure): "serious" caps the
 * volunteer's CPU use at 50%, "critical" at 20%.
 */
export const PRESSURE_DUTY = Object.freeze({ serious: 50, critical: 20 });

export function effectiveDuty(settings, pressure) {
  const cap = settings.pressure ? PRESSURE_DUTY[pressure] : undefined;
  return cap ? Math.min(settings.duty, cap) : settings.duty;
}

/**
 * Why computing must wait right now: a list of {key, reason}, empty when it may run.
 * env: {hidden, battery: null | {charging, level (0..1)}, connection: null | {saveData, type, effectiveType},
 *       now (ms), minute (since local midnight), batteryHoldUntil (ms, 0: none)}
 */
export function blockers(settings, env) {
  const found = [];
  const now = env.now ?? Date.now();
  if (settings.pauseUntil > now) {
    found.push({ key: "paused-until", reason: `you paused computing until ${clockTime(settings.pauseUntil)}` });
  }
  if (settings.scheduleOn && env.minute !== undefined &&
      !inSchedule(env.minute, settings.scheduleFrom, settings.scheduleTo)) {
    found.push({ key: "schedule",
                 reason: `your daily schedule computes from ${settings.scheduleFrom} to ${settings.scheduleTo}` });
  }
  if (!settings.background && env.hidden) {
    found.push({ key: "hidden", reason: "this page is in the background" });
  }
  const battery = env.battery;
  if (battery) {
    if (settings.chargingOnly && !battery.charging) {
      found.push({ key: "charging", reason: "the device is not charging" });
    }
    const percent = Math.round(battery.level * 100);
    if (settings.minBattery > 0 && percent < settings.minBattery) {
      found.push({ key: "battery",
                   reason: `the battery is at ${percent}%, below your ${settings.minBattery}% limit` });
    }
  }
  if (env.batteryHoldUntil > now) {
    found.push({ key: "battery-hold",
                 reason: `the battery is back above ${settings.minBattery}%; computing resumes at ` +
                         `${clockTime(env.batteryHoldUntil)}, or at once when plugged in` });
  }
  const metered = meteredReason(env.connection);
  if (settings.pauseOnMetered && metered) {
    found.push({ key: "metered", reason: metered });
  }
  return found;
}

/** Why the Network Information API says this connection costs money or is too slow; "" if not. */
export function meteredReason(connection) {
  if (!connection) return "";
  if (connection.saveData) return "Data Saver is on";
  if (connection.type === "cellular") return "the device is on mobile data";
  if (SLOW_CONNECTIONS.has(connection.effectiveType)) {
    return "the connection is very slow (2G), probably mobile data";
  }
  return "";
}

/**
 * The duty-cycle throttle: after computing for busyMs, a worker rests so that
 * busy / (busy + rest) = duty%. Capped, so a very long task cannot park a worker for hours.
 */
export function restAfter(busyMs, dutyPercent) {
  const duty = Math.min(100, Math.max(1, dutyPercent));
  if (duty >= 100 || busyMs <= 0) return 0;
  return Math.min(MAX_REST_MS, Math.round(busyMs * (100 - duty) / duty));
}

/** Reconnect delay: exponential backoff with "equal jitter" (half fixed, half random). */
export function backoffDelay(attempt, { firstMs = 1_000, capMs = 30_000, random = Math.random } = {}) {
  const base = Math.min(capMs, firstMs * 2 ** Math.max(0, attempt));
  return Math.round(base / 2 + random() * (base / 2));
}

/** The share of wall time the given busy intervals [{start, end}] cover within [from, to]. */
export function measuredDuty(intervals, from, to) {
  if (to <= from) return 0;
  let busy = 0;
  for (const { start, end } of intervals) {
    const s = Math.max(start, from);
    const e = Math.min(end ?? to, to);
    if (e > s) busy += e - s;
  }
  return busy / (to - from);
}
