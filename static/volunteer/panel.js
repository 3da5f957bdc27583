// The "Settings for this device" panel: native form controls bound to the settings,
// plus plain words about what this browser cannot report.

const SUPPORT_TEXT = {
  battery: {
    yes: "This browser reports the battery, so these settings apply.",
    no: "This browser does not tell web pages about the battery (it has no Battery Status " +
        "API), so these two settings cannot apply here: computing never waits for a charger " +
        "or a battery level. Plug the device in yourself if that matters to you.",
  },
  connection: {
    full: "This browser reports the kind of connection, so this setting applies.",
    partial: "This browser reports Data Saver and very slow connections but not whether the " +
             "connection is mobile data, so this setting applies only to those two. Pause " +
             "yourself when you are on mobile data.",
    none: "This browser does not tell web pages whether the connection is mobile data (it has " +
          "no Network Information API), so this setting cannot apply here. Pause yourself " +
          "when you are on mobile data.",
  },
  pressure: {
    yes: "This browser reports how hard-pressed the processor is (Compute Pressure API): when " +
         "on, computing uses at most 50% of the CPU under serious pressure and 20% under " +
         "critical pressure, whatever the CPU use above says.",
    no: "This browser does not report processor pressure (it has no Compute Pressure API), so " +
        "this setting cannot apply here; lower the CPU use above if the device gets warm.",
  },
  wakeLock: {
    yes: "Stops the screen from turning off (and the device from sleeping) while tasks run; " +
         "released when you pause.",
    no: "This browser cannot keep the screen on for a web page (it has no Screen Wake Lock " +
        "API), so this setting cannot apply here.",
  },
};

function percentText(value) {
  return `${value} percent`;
}

export class SettingsPanel {
  constructor(root, { settings, cores, support, onChange }) {
    const $ = (id) => root.getElementById(id);
    this.details = $("settings-panel");
    this.form = $("settings");
    this.summary = $("settings-summary");
    this.workers = $("set-workers");
    this.duty = $("set-duty");
    this.dutyValue = $("set-duty-value");
    this.background = $("set-background");
    this.charging = $("set-charging");
    this.battery = $("set-battery");
    this.batteryValue = $("set-battery-value");
    this.metered = $("set-metered");
    this.wakeLock = $("set-wakelock");
    this.schedule = $("set-schedule");
    this.scheduleFrom = $("set-schedule-from");
    this.scheduleTo = $("set-schedule-to");
    this.batteryHold = $("set-battery-hold");
    this.batteryHoldValue = $("set-battery-hold-value");
    this.pressure = $("set-pressure");
    this.onChange = onChange;

    for (let n = 1; n <= cores; n += 1) {
      const option = document.createElement("option");
      option.value = String(n);
      option.textContent = n === 1 ? "1 worker" : `${n} workers`;
      this.workers.append(option);
    }
    $("cores-note").textContent = cores > 1
      ? `This device has ${cores} cores; the default leaves one free for you.`
      : "This device reports one core.";
    this.setSupport(root, support);
    this.show(settings);

    this.form.addEventListener("submit", (event) => event.preventDefault());
    this.form.addEventListener("input", () => this.changed());
    this.form.addEventListener("change", () => this.changed());
  }

  setSupport(root, support) {
    const put = (id, key, level) => {
      const node = root.getElementById(id);
      node.textContent = SUPPORT_TEXT[key][level];
      node.dataset.supported = level === "no" || level === "none" ? "no" : "yes";
    };
    put("battery-support", "battery", support.battery ? "yes" : "no");
    put("network-support", "connection", support.connection);
    put("wakelock-support", "wakeLock", support.wakeLock ? "yes" : "no");
    put("pressure-support", "pressure", support.pressure ? "yes" : "no");
    this.batteryHold.disabled = !support.battery;
    this.pressure.disabled = !support.pressure;
    // Controls that cannot do anything here are shown (so the volunteer learns why) but off.
    this.charging.disabled = !support.battery;
    this.battery.disabled = !support.battery;
    this.metered.disabled = support.connection === "none";
    this.wakeLock.disabled = !support.wakeLock;
  }

  read() {
    return {
      workers: Number(this.workers.value),
      duty: Number(this.duty.value),
      background: this.background.checked,
      chargingOnly: this.charging.checked,
      minBattery: Number(this.battery.value),
      pauseOnMetered: this.metered.checked,
      wakeLock: this.wakeLock.checked,
      scheduleOn: this.schedule.checked,
      // An emptied time field keeps the last valid time (normalizeSettings does the same).
      scheduleFrom: this.scheduleFrom.value || this.last?.scheduleFrom,
      scheduleTo: this.scheduleTo.value || this.last?.scheduleTo,
      batteryHoldMin: Number(this.batteryHold.value),
      pressure: this.pressure.checked,
    };
  }

  show(settings) {
    this.workers.value = String(settings.workers);
    this.duty.value = String(settings.duty);
    this.background.checked = settings.background;
    this.charging.checked = settings.chargingOnly;
    this.battery.value = String(settings.minBattery);
    this.metered.checked = settings.pauseOnMetered;
    this.wakeLock.checked = settings.wakeLock;
    this.schedule.checked = settings.scheduleOn;
    this.scheduleFrom.value = settings.scheduleFrom;
    this.scheduleTo.value = settings.scheduleTo;
    this.batteryHold.value = String(settings.batteryHoldMin);
    this.pressure.checked = settings.pressure;
    this.showValues(settings);
  }

  showValues(settings) {
    this.last = settings;
    const hold = settings.batteryHoldMin ? `${settings.batteryHoldMin} min` : "no wait";
    this.batteryHoldValue.textContent = hold;
    this.batteryHold.setAttribute("aria-valuetext",
                                  settings.batteryHoldMin ? `${settings.batteryHoldMin} minutes` : "no wait");
    this.dutyValue.textContent = `${settings.duty}%`;
    this.duty.setAttribute("aria-valuetext", percentText(settings.duty));
    const limit = settings.minBattery ? `${settings.minBattery}%` : "never";
    this.batteryValue.textContent = limit;
    this.battery.setAttribute("aria-valuetext",
                              settings.minBattery ? percentText(settings.minBattery) : "never pause");
    const parts = [
      settings.workers === 1 ? "1 worker" : `${settings.workers} workers`,
      `CPU ${settings.duty}%`,
      settings.background ? "also in the background" : "only while visible",
    ];
    if (!this.charging.disabled && settings.chargingOnly) parts.push("only while charging");
    if (settings.scheduleOn) parts.push(`daily ${settings.scheduleFrom}–${settings.scheduleTo}`);
    this.summary.textContent = parts.join(" · ");
  }

  changed() {
    const settings = this.onChange(this.read());
    this.showValues(settings);
  }
}
