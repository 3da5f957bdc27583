// When this device may compute, and how hard: pure rules, unit-tested with node.
//
// Inputs are a snapshot of the device (visibility, battery, connection) as the
// browser reports it; null for an API the browser does not have, in which case
// the rule that needs it cannot apply (and the page says so).

export const MAX_REST_MS = 10 * 60_000;
const SLOW_CONNECTIONS = new Set(["slow-2g", "2g"]);

/**
 * Why computing must wait right now: a list of {key, reason}, empty when it may run.
 * env: {hidden, battery: null | {charging, level (0..1)}, connection: null | {saveData, type, effectiveType}}
 */
export function blockers(settings, env) {
  const found = [];
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
