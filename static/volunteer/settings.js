// Per-device settings of the volunteer page, remembered in this browser's localStorage.
//
// Pure functions (defaults, normalisation) plus a tiny store; no DOM. The defaults
// follow BOINC's on phones: compute only while charging, above a battery level and
// only while the page is in front; everywhere: leave one core free, pause on mobile data.

export const SETTINGS_KEY = "sparecycles.settings.v1";
export const DUTY_MIN = 10;
export const DUTY_STEP = 5;
export const BATTERY_STEP = 5;
export const BATTERY_MAX = 95;

export function defaultSettings({ cores, mobile }) {
  return {
    workers: Math.max(1, cores - 1),
    duty: 100,                    // % of the time a worker may compute
    // Keep computing while the page is hidden: a desktop tab left open is the classic
    // volunteer; a phone should stop when the volunteer switches apps.
    background: !mobile,
    chargingOnly: Boolean(mobile),
    minBattery: mobile ? 50 : 20, // %, pause below it (where the Battery Status API exists)
    pauseOnMetered: true,
    wakeLock: false,
    pauseUntil: 0,                // Date.now() ms: "pause for 1 h / 4 h / until tomorrow"
    scheduleOn: false,            // compute only between scheduleFrom and scheduleTo, daily
    scheduleFrom: "22:00",
    scheduleTo: "07:00",
    batteryHoldMin: 10,           // after a low battery, resume only this long after it recovers
    // Slow down under the browser's CPU pressure reading. Off unless chosen: computing is
    // itself what raises the pressure, so it would halve every device's work by default.
    pressure: false,
  };
}

const CLOCK = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;
export const HOLD_MAX = 60;
export const HOLD_STEP = 5;
export const PAUSE_AHEAD_MAX_MS = 7 * 24 * 3600_000;   // as the server accepts

function clock(value, fallback) {
  return typeof value === "string" && CLOCK.test(value) ? value : fallback;
}

function clampInt(value, min, max, fallback, step = 1) {
  const n = Number(value);
  if (!Number.isFinite(n)) return fallback;
  const stepped = Math.round(n / step) * step;
  return Math.min(max, Math.max(min, stepped));
}

function bool(value, fallback) {
  return typeof value === "boolean" ? value : fallback;
}

/** Settings as stored (or half-stored, or from an older page), made valid for this device. */
export function normalizeSettings(raw, defaults, { cores }) {
  const source = raw && typeof raw === "object" ? raw : {};
  return {
    workers: clampInt(source.workers, 1, Math.max(1, cores), defaults.workers),
    duty: clampInt(source.duty, DUTY_MIN, 100, defaults.duty, DUTY_STEP),
    background: bool(source.background, defaults.background),
    chargingOnly: bool(source.chargingOnly, defaults.chargingOnly),
    minBattery: clampInt(source.minBattery, 0, BATTERY_MAX, defaults.minBattery, BATTERY_STEP),
    pauseOnMetered: bool(source.pauseOnMetered, defaults.pauseOnMetered),
    wakeLock: bool(source.wakeLock, defaults.wakeLock),
    pauseUntil: clampInt(source.pauseUntil, 0, Number.MAX_SAFE_INTEGER, defaults.pauseUntil),
    scheduleOn: bool(source.scheduleOn, defaults.scheduleOn),
    scheduleFrom: clock(source.scheduleFrom, defaults.scheduleFrom),
    scheduleTo: clock(source.scheduleTo, defaults.scheduleTo),
    batteryHoldMin: clampInt(source.batteryHoldMin, 0, HOLD_MAX, defaults.batteryHoldMin, HOLD_STEP),
    pressure: bool(source.pressure, defaults.pressure),
  };
}

export class SettingsStore {
  constructor(storage, device) {
    this.storage = storage;   // window.localStorage, or null when storage is disabled
    this.device = device;     // {cores, mobile}
    this.defaults = defaultSettings(device);
  }

  /** Whether this browser has settings of its own (else an account's may be adopted). */
  hasSaved() {
    try {
      return Boolean(this.storage?.getItem(SETTINGS_KEY));
    } catch {
      return false;
    }
  }

  load() {
    let raw = null;
    try {
      raw = JSON.parse(this.storage?.getItem(SETTINGS_KEY) || "null");
    } catch {
      raw = null;   // unreadable: start from the defaults
    }
    return normalizeSettings(raw, this.defaults, this.device);
  }

  save(settings) {
    const clean = normalizeSettings(settings, this.defaults, this.device);
    try {
      this.storage?.setItem(SETTINGS_KEY, JSON.stringify(clean));
    } catch {
      /* storage full or disabled: the settings hold for this visit only */
    }
    return clean;
  }
}
