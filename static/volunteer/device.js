// What the browser tells the page about the device: visibility, battery (Battery
// Status API), connection (Network Information API), online state, and the screen
// wake lock. Each API may be missing; `support` says which ones exist, so the page
// can say plainly what it cannot know.

export class DeviceState extends EventTarget {
  constructor(win = window) {
    super();
    this.win = win;
    const nav = win.navigator;
    this.support = {
      battery: typeof nav.getBattery === "function",
      // "full": says whether it is mobile data (Android); "partial": only Data Saver and
      // the speed (desktop Chromium); "none": no Network Information API (Firefox, Safari).
      connection: !nav.connection ? "none" : (nav.connection.type === undefined ? "partial" : "full"),
      wakeLock: Boolean(nav.wakeLock && typeof nav.wakeLock.request === "function"),
      // The Compute Pressure API (Chromium on desktop): how hard-pressed the CPU is.
      pressure: typeof win.PressureObserver === "function",
    };
    this.pressure = null;        // "nominal" | "fair" | "serious" | "critical", or null
    this.batteryManager = null;
    this.batteryError = "";
  }

  /** Start listening; resolves once the battery (if any) has been read. */
  async start() {
    const { document, navigator } = this.win;
    const changed = () => this.dispatchEvent(new Event("change"));
    document.addEventListener("visibilitychange", changed);
    this.win.addEventListener("online", changed);
    this.win.addEventListener("offline", changed);
    if (navigator.connection && navigator.connection.addEventListener) {
      navigator.connection.addEventListener("change", changed);
    }
    if (this.support.battery) {
      try {
        const manager = await navigator.getBattery();
        this.batteryManager = manager;
        manager.addEventListener("chargingchange", changed);
        manager.addEventListener("levelchange", changed);
      } catch (error) {
        // e.g. blocked by a permissions policy: as good as missing.
        this.support.battery = false;
        this.batteryError = String((error && error.message) || error);
      }
    }
    if (this.support.pressure) {
      try {
        const observer = new this.win.PressureObserver((records) => {
          const last = records[records.length - 1];
          if (last && last.state !== this.pressure) {
            this.pressure = last.state;
            changed();
          }
        });
        await observer.observe("cpu", { sampleInterval: 2_000 });
      } catch {
        this.support.pressure = false;   // no CPU source here, or refused by a policy
      }
    }
    changed();
  }

  snapshot() {
    const { document, navigator } = this.win;
    const battery = this.batteryManager;
    const connection = navigator.connection;
    return {
      hidden: document.visibilityState === "hidden",
      pressure: this.pressure,
      online: navigator.onLine !== false,
      battery: battery ? { charging: Boolean(battery.charging), level: Number(battery.level) } : null,
      connection: connection ? { saveData: Boolean(connection.saveData), type: connection.type,
                                 effectiveType: connection.effectiveType } : null,
    };
  }
}

/** Keeps the screen on while wanted, re-taking the lock when the page is shown again. */
export class WakeLockKeeper {
  constructor(win = window, onChange = () => {}) {
    this.win = win;
    this.onChange = onChange;
    this.supported = Boolean(win.navigator.wakeLock && typeof win.navigator.wakeLock.request === "function");
    this.sentinel = null;
    this.wanted = false;
    this.error = "";
    this.pending = null;
    win.document.addEventListener("visibilitychange", () => this.sync());
  }

  get held() {
    return Boolean(this.sentinel && !this.sentinel.released);
  }

  want(on) {
    this.wanted = Boolean(on);
    this.sync();
  }

  async sync() {
    if (!this.supported) return;
    // The browser drops the lock whenever the page is hidden; ask again when it is back.
    const should = this.wanted && this.win.document.visibilityState === "visible";
    if (should && !this.held && !this.pending) {
      this.pending = this.win.navigator.wakeLock.request("screen").then((sentinel) => {
        this.sentinel = sentinel;
        this.error = "";
        sentinel.addEventListener("release", () => this.onChange());
        if (!this.wanted) this.release();
      }, (error) => {
        this.error = String((error && error.message) || error);
      }).finally(() => {
        this.pending = null;
        this.onChange();
      });
    } else if (!should && this.held) {
      this.release();
    }
  }

  release() {
    const sentinel = this.sentinel;
    this.sentinel = null;
    if (sentinel && !sentinel.released) sentinel.release().catch(() => {}).finally(() => this.onChange());
  }
}
