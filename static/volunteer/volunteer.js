// Spare Cycles volunteer page: the UI and the protocol client (PROTOCOL.md v1).
//
// Pieces:
//   ComputeSlot  one compute worker running Pyodide (compute-worker.js), one task at a time,
//                inside a sandboxed frame of its own (compute-host.js: ComputeFrame)
//   ComputePool  the slots, as many as the volunteer's "Workers" setting
//   VolunteerClient  the WebSocket conversation: hello/welcome, request/tasks,
//                result/ack, cancel, ping/pong, reconnects and resends; and the
//                device rules (battery, network, visibility, CPU duty cycle)
//   PageView     everything the volunteer sees; no protocol knowledge
//   settings.js / policy.js / device.js / outbox.js / panel.js: per-device settings,
//                the pure rules, the browser APIs, the IndexedDB outbox, the settings form
//
// Nothing is fetched from anywhere but this server: the runtime comes from
// /static/pyodide/<version>/, app code from the task's code_url, both same-origin, both
// fetched by this page and handed to the compute frame, which reaches nothing itself.

import { ComputeFrame, prepareRuntime } from "./compute-host.js";
import { creditMicroOf, formatCreditMicro } from "./credit.js";
import { DeviceState, WakeLockKeeper } from "./device.js";
import { gatherHostInfo } from "./host-info.js";
import { Outbox } from "./outbox.js";
import { SettingsPanel } from "./panel.js";
import {
  BatteryHold, backoffDelay, blockers, clockTime, effectiveDuty, measuredDuty, pauseEnd, restAfter,
} from "./policy.js";
import { SettingsStore } from "./settings.js";
import { SettingsSync } from "./sync.js";

const CLIENT = Object.freeze({ name: "web", version: "1.1" });
const TOKEN_KEY = "sparecycles.deviceToken";
const LOG_LIMIT = 20;
const BACKOFF_FIRST_MS = 1_000;
const BACKOFF_CAP_MS = 30_000;
const ONLINE_JITTER_MS = 1_000;           // spread reconnects when a whole network comes back
const HANDSHAKE_TIMEOUT_MS = 20_000;     // socket open + welcome
const MAX_FRAME_BYTES = 1024 * 1024;      // PROTOCOL.md: larger frames close the socket (1009)
const utf8 = new TextEncoder();
const byteLength = (text) => utf8.encode(text).length;
const MAX_ERROR_CHARS = 2_000;
const EMPTY_RESEND_DELAY_S = 2;           // a tasks frame that brought nothing new
const RATE_LIMITED_RESEND_MS = 2_000;    // an ack `rate_limited`: not stored, send it again
const SEEN_LIMIT = 1_000;                 // task ids remembered for de-duplication
const ANNOUNCE_AFTER_MS = 1_500;          // status must hold this long before it is announced
// A stored result is sent even after its task's deadline (the server still takes it
// while the work unit is open); a day later it is surely settled elsewhere: drop it.
const RESULT_KEEP_AFTER_DEADLINE_MS = 24 * 3600_000;
const TIMELINE_LIMIT = 200;               // busy intervals kept for the measured CPU use
const DUTY_WINDOW_MS = 5 * 60_000;
const PROGRESS_SEND_MS = 5_000;           // a task's progress goes to the server at most this often
const EARNINGS_EVERY_MS = 60_000;         // the "All time" column refreshes at least this often
const EARNINGS_MIN_GAP_MS = 3_000;

// --- configuration ---------------------------------------------------------------

function readConfig() {
  const config = JSON.parse(document.getElementById("client-config").textContent);
  // Tests (and curious volunteers) may shorten or lengthen the runtime timeout:
  // ?runtime_timeout_ms=1500, bounded to 1 s .. 10 min.
  const params = new URLSearchParams(window.location.search);
  const override = Number.parseInt(params.get("runtime_timeout_ms") || "", 10);
  if (Number.isFinite(override)) {
    config.runtimeTimeoutMs = Math.min(600_000, Math.max(1_000, override));
  }
  config.runtimeTimeoutMs = config.runtimeTimeoutMs || 60_000;
  return config;
}

// hello's optional host object (host-info.js), gathered once, soon after the page loads; a
// hello sent before it is ready goes without it (the server keeps what it had).
let hostReport = null;
setTimeout(() => {
  gatherHostInfo().then((host) => { hostReport = host; }).catch(() => {});
}, 0);

function capabilities() {
  const caps = {
    runtimes: ["pyodide", "wasm"],   // wasm tasks run in wasm-runtime.js, without Pyodide
    cores: deviceCores(),
    mobile: isMobile(),
  };
  if (typeof navigator.deviceMemory === "number") {
    caps.memory_mb = Math.round(navigator.deviceMemory * 1024);
  }
  return caps;
}

function deviceCores() {
  return Math.max(1, navigator.hardwareConcurrency || 1);
}

function isMobile() {
  if (navigator.userAgentData && typeof navigator.userAgentData.mobile === "boolean") {
    return navigator.userAgentData.mobile;
  }
  return window.matchMedia("(pointer: coarse)").matches;
}

const tokenStore = {
  // localStorage can be missing or throw (storage disabled); then the token
  // lives for this page only and a reload enrols a new device.
  memory: null,
  get() {
    try {
      return window.localStorage.getItem(TOKEN_KEY) || this.memory;
    } catch {
      return this.memory;
    }
  },
  set(token) {
    this.memory = token;
    try {
      window.localStorage.setItem(TOKEN_KEY, token);
    } catch {
      /* kept in memory only */
    }
  },
  forget() {
    this.memory = null;
    try {
      window.localStorage.removeItem(TOKEN_KEY);
    } catch {
      /* nothing stored */
    }
  },
};

function shortId(taskId) {
  return String(taskId).slice(0, 8);
}

/**
 * What a task is in a person's words, from the task's optional `about` (older servers send
 * none): {project, projectUrl, app, description, label}. Text only; never markup.
 */
function aboutTask(task) {
  const app = task.app || {};
  const about = task.about && typeof task.about === "object" ? task.about : {};
  const str = (value, limit) => (typeof value === "string" ? value.slice(0, limit) : "");
  const project = str(about.project?.title, 200);
  const url = str(about.project?.url, 300);
  const appTitle = str(about.app?.title, 200) || `${app.name} v${app.version}`;
  return {
    project,
    // Only a path of this site: a task cannot send the volunteer elsewhere.
    projectUrl: /^\/projects\/[A-Za-z0-9_-]+\/$/.test(url) ? url : "",
    app: appTitle,
    description: str(about.description, 300),
    label: project ? `${appTitle} (${project})` : appTitle,
  };
}

function duration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

function spokenDuration(ms) {
  const total = Math.max(0, Math.round(ms / 60_000));
  if (total < 60) return `${total} min`;
  return `${Math.floor(total / 60)} h ${total % 60} min`;
}

function seconds(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function secondsLeft(when) {
  return `${Math.max(0, Math.ceil((when - Date.now()) / 1000))}s`;
}

/** Whose code a task runs: one owner's code never shares a runtime with another's. */
function appKey(task) {
  const app = task.app || {};
  return `${app.name}/${app.version}`;
}

/** "Mandelbrot tiles (Fractals) task" / "2 tasks": for log lines about interrupted tasks. */
function tasksText(tasks) {
  return tasks.length === 1 ? `${aboutTask(tasks[0]).label} task` : `${tasks.length} tasks`;
}

function deadlinePassed(task) {
  const deadline = Date.parse(task.deadline);
  return Number.isFinite(deadline) && deadline < Date.now();
}

// --- compute workers ----------------------------------------------------------------

class Stopped extends Error {
  constructor() {
    super("stopped");
  }
}

class RuntimeLoadError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;   // "timeout" | "error"
  }
}

class ComputeSlot {
  constructor(index, config, onStage) {
    this.index = index;
    this.config = config;
    this.onStage = onStage;
    this.worker = null;
    this.state = "stopped";   // stopped | loading | ready
    this.task = null;
    this.pendingStart = null;
    this.pendingRun = null;
    this.loadMs = null;
    this.python = "";
    this.retiring = false;    // the pool shrank: leave once the current task is done
    this.restUntil = 0;       // duty cycle: no new task before this (Date.now() ms)
    this.restTimer = null;
    this.lastBusyMs = 0;
    this.lastEnd = 0;
    this.appKey = null;       // the app whose code this slot's runtime has run
    this.onProgress = null;   // (taskId, fraction) when the app reports progress
  }

  get idle() {
    return this.state === "ready" && this.task === null && !this.retiring && !this.resting;
  }

  get resting() {
    return this.restUntil > Date.now();
  }

  /** Start a fresh compute frame and load Pyodide in it; resolves when it can run tasks. */
  start() {
    this.stop();
    const worker = new ComputeFrame(this.config, this.index + 1);
    this.worker = worker;
    this.state = "loading";
    return new Promise((resolve, reject) => {
      const timeoutMs = this.config.runtimeTimeoutMs;
      const timer = setTimeout(() => fail(new RuntimeLoadError(
        "timeout", `no answer within ${seconds(timeoutMs)}`)), timeoutMs);
      const fail = (error) => {
        clearTimeout(timer);
        this.pendingStart = null;
        if (this.worker === worker) this.stop();
        reject(error);
      };
      this.pendingStart = { reject: fail };
      worker.onmessage = (event) => {
        if (this.worker !== worker) return;
        const message = event.data || {};
        if (message.type === "stage") {
          this.onStage(message.stage);
        } else if (message.type === "ready") {
          clearTimeout(timer);
          this.pendingStart = null;
          this.state = "ready";
          this.loadMs = message.loadMs;
          this.python = message.python;
          resolve(message);
        } else if (message.type === "init-error") {
          fail(new RuntimeLoadError("error", message.message));
        } else if (message.type === "result") {
          this.finish(message);
        } else if (message.type === "progress" && this.task &&
                   message.task_id === this.task.task_id && this.onProgress) {
          this.onProgress(message.task_id, message.fraction);
        }
      };
      worker.onerror = (event) => {
        event.preventDefault();
        if (this.worker !== worker) return;
        const error = new RuntimeLoadError(
          "error", event.message || "the compute worker script could not be started");
        if (this.state === "loading") {
          fail(error);
        } else {
          this.finish({ type: "result", task_id: this.task && this.task.task_id,
                        status: "error", error: `the compute worker crashed: ${error.message}`,
                        kind: "internal", elapsed_ms: 0 });
        }
      };
      worker.postMessage({ type: "init" });
    });
  }

  /** Run one task; resolves with the worker's result message, rejects with Stopped. */
  run(task) {
    if (!this.idle) throw new Error("slot is busy");
    if (this.appKey && this.appKey !== appKey(task)) throw new Error("slot ran another app");
    this.appKey = appKey(task);
    this.task = task;
    return new Promise((resolve, reject) => {
      this.pendingRun = { resolve, reject, taskId: task.task_id };
      this.worker.postMessage({ type: "run", task });
    });
  }

  finish(message) {
    const pending = this.pendingRun;
    if (!pending || message.task_id !== pending.taskId) return;
    this.pendingRun = null;
    this.task = null;
    pending.resolve(message);
  }

  /** Rest after computing for busyMs, so that busy / (busy + rest) = duty. */
  rest(busyMs, duty, wake) {
    this.lastBusyMs = busyMs;
    this.lastEnd = Date.now();
    this.reschedule(duty, wake);
  }

  /** The duty setting changed (or the slot rested already): recompute the end of the rest. */
  reschedule(duty, wake) {
    clearTimeout(this.restTimer);
    this.restTimer = null;
    this.restUntil = this.lastEnd ? this.lastEnd + restAfter(this.lastBusyMs, duty) : 0;
    const wait = this.restUntil - Date.now();
    if (wait > 0) this.restTimer = setTimeout(wake, wait + 5);
  }

  /** Terminate the worker: the only way to stop Python mid-task. */
  stop() {
    if (this.worker) this.worker.terminate();
    this.worker = null;
    this.state = "stopped";
    this.task = null;
    clearTimeout(this.restTimer);
    this.restTimer = null;
    this.restUntil = 0;
    this.lastEnd = 0;
    this.appKey = null;
    const { pendingStart, pendingRun } = this;
    this.pendingStart = null;
    this.pendingRun = null;
    if (pendingStart) pendingStart.reject(new Stopped());
    if (pendingRun) pendingRun.reject(new Stopped());
  }
}

class ComputePool {
  constructor(config, onStage, onProgress = null) {
    this.config = config;
    this.onStage = onStage;
    this.onProgress = onProgress;
    this.slots = [];
    this.nextIndex = 0;
  }

  /** Slots that take new tasks (retiring ones only finish what they have). */
  get size() {
    return this.slots.filter((slot) => !slot.retiring).length;
  }

  get loading() {
    return this.slots.some((slot) => slot.state === "loading");
  }

  get ready() {
    return this.slots.some((slot) => slot.state === "ready" && !slot.retiring);
  }

  get started() {
    return this.slots.some((slot) => slot.state !== "stopped");
  }

  /**
   * Grow or shrink to `count` slots; returns the new ones (not started). Shrinking
   * removes idle slots at once and lets busy ones finish their task first.
   */
  resize(count) {
    const added = [];
    for (const slot of this.slots) {
      if (this.size >= count) break;
      if (slot.retiring) slot.retiring = false;
    }
    while (this.size < count) {
      const slot = new ComputeSlot(this.nextIndex, this.config, this.onStage);
      slot.onProgress = this.onProgress;
      this.nextIndex += 1;
      this.slots.push(slot);
      added.push(slot);
    }
    for (const slot of [...this.slots].reverse()) {
      if (this.size <= count) break;
      if (slot.task) {
        slot.retiring = true;
      } else {
        this.remove(slot);
      }
    }
    return added;
  }

  remove(slot) {
    slot.stop();
    this.slots = this.slots.filter((other) => other !== slot);
  }

  /**
   * Stop every slot; with keepIdle, runtimes that are loaded and computing nothing stay
   * (a frame idles without using the processor), so a resume needs no second start-up.
   * A slot mid-task always stops: that is the only way to interrupt Python.
   */
  stopAll({ keepIdle = false } = {}) {
    for (const slot of this.slots) {
      if (keepIdle && !slot.retiring && slot.state === "ready" && slot.task === null) continue;
      slot.stop();
    }
    this.slots = this.slots.filter((slot) => !slot.retiring);
  }

  /** An idle slot for `task`: one that ran its app, else a fresh one, else any (to restart). */
  idleSlot(task) {
    const idle = this.slots.filter((slot) => slot.idle);
    const key = appKey(task);
    return idle.find((slot) => slot.appKey === key) || idle.find((slot) => !slot.appKey) ||
      idle[0] || null;
  }
}

// --- the page ---------------------------------------------------------------------------

class PageView {
  constructor(root) {
    const $ = (id) => root.getElementById(id);
    this.button = $("toggle");
    this.status = $("status");
    this.announcer = $("status-announcer");
    this.alert = $("alert");
    this.log = $("activity");
    this.counters = { done: $("count-done"), failed: $("count-failed"), credit: $("count-credit"),
                      visitCredit: $("count-visit-credit"), unsent: $("count-unsent"),
                      pending: $("count-pending"), valid: $("count-valid"), rank: $("count-rank") };
    this.tokensLine = $("tokens-line");
    this.nowEmpty = $("now-empty");
    this.nowTasks = $("now-tasks");
    this.nowItems = new Map();   // task_id -> {item, elapsed, percent, bar}
    this.pauseButtons = [...root.querySelectorAll("[data-pause-for]")];
    this.resumeNow = $("resume-now");
    this.loadLine = $("load-line");
    this.offlineInfo = $("offline-info");
    this.deviceId = $("device-id");
    this.volunteerName = $("volunteer-name");
    this.volunteerTokens = $("volunteer-tokens");
    this.runtimeInfo = $("runtime-info");
    this.errors = new Map();   // key -> message; several problems can be shown at once
    this.lastAnnounced = "";
    this.pendingPhase = "";
    this.announceTimer = null;
  }

  /** state: "paused" | "running" | "waiting" (Start pressed, but a device rule holds it back). */
  setRunning(running, waiting = false) {
    this.button.textContent = running ? "Pause" : "Start";
    this.button.dataset.state = running ? (waiting ? "waiting" : "running") : "paused";
  }

  /**
   * The visible status line may tick every second (countdowns) and flicker
   * between short tasks; the screen-reader announcer only hears about a phase
   * that has held for ANNOUNCE_AFTER_MS.
   */
  setStatus(text, phase) {
    if (this.status.textContent !== text) this.status.textContent = text;
    if (phase === this.pendingPhase) return;
    this.pendingPhase = phase;
    clearTimeout(this.announceTimer);
    this.announceTimer = setTimeout(() => {
      if (phase !== this.lastAnnounced) {
        this.lastAnnounced = phase;
        this.announcer.textContent = this.status.textContent;
      }
    }, ANNOUNCE_AFTER_MS);
  }

  setCounters({ done, failed, credit, visitCredit, unsent }) {
    const put = (node, text) => { if (node.textContent !== text) node.textContent = text; };
    put(this.counters.done, String(done));
    put(this.counters.failed, String(failed));
    put(this.counters.unsent, String(unsent));
    put(this.counters.credit, formatCreditMicro(credit));  // micro-credits, six decimals always
    put(this.counters.visitCredit, formatCreditMicro(visitCredit));
  }

  /** The "All time" column and the tokens line, from /devices/earnings/. */
  setEarnings(data, policyUrl) {
    this.counters.pending.textContent = formatCreditMicro(data.pending_credit_micro);
    this.counters.valid.textContent = Number(data.results_valid || 0).toLocaleString("en-US");
    this.counters.rank.textContent = data.rank ? `#${Number(data.rank).toLocaleString("en-US")}` : "—";
    const paid = formatCreditMicro(data.tokens_micro);
    const parts = [`Tokens: ${paid} paid to you so far.`];
    const epoch = data.epoch;
    if (epoch) {
      const closes = Date.parse(epoch.closes_at);
      const when = Number.isFinite(closes)
        ? ` when it closes at ${clockTime(closes)} (in ${spokenDuration(closes - Date.now())})` : "";
      parts.push(`About ${formatCreditMicro(epoch.estimated_tokens_micro)} more estimated for ` +
                 `reward epoch ${epoch.index}, paid${when}, in proportion to the credit earned in it.`);
    }
    const link = document.createElement("a");
    link.href = policyUrl || "/ledger/#policy-title";
    link.textContent = "How the split works";
    this.tokensLine.replaceChildren(`${parts.join(" ")} `, link);
  }

  /** The tasks running now: [{taskId, about, started, progress}]; items are kept by task id
   * so the link keeps focus and only the numbers change every second. */
  setNow(tasks, now = Date.now()) {
    const wanted = new Set(tasks.map((t) => t.taskId));
    for (const [taskId, nodes] of this.nowItems) {
      if (!wanted.has(taskId)) {
        nodes.item.remove();
        this.nowItems.delete(taskId);
      }
    }
    for (const task of tasks) {
      let nodes = this.nowItems.get(task.taskId);
      if (!nodes) {
        nodes = this.nowItem(task.about);
        this.nowItems.set(task.taskId, nodes);
        this.nowTasks.append(nodes.item);
      }
      nodes.elapsed.textContent = `Running for ${duration(now - task.started)}`;
      if (task.progress !== null && task.progress !== undefined) {
        const percent = Math.floor(task.progress * 100);
        nodes.bar.hidden = false;
        nodes.bar.value = task.progress;
        nodes.bar.setAttribute("aria-valuetext", `${percent} percent`);
        nodes.percent.textContent = `${percent}% done`;
      }
    }
    this.nowEmpty.hidden = tasks.length > 0;
  }

  nowItem(about) {
    const item = document.createElement("li");
    item.className = "now-task";
    const what = document.createElement("p");
    what.className = "now-what";
    if (about.project) {
      const project = about.projectUrl ? document.createElement("a") : document.createElement("span");
      if (about.projectUrl) project.href = about.projectUrl;
      project.textContent = about.project;
      what.append(project, ` — ${about.app}`);
    } else {
      what.textContent = about.app;
    }
    item.append(what);
    if (about.description) {
      const description = document.createElement("p");
      description.className = "now-description muted small";
      description.textContent = about.description;
      item.append(description);
    }
    const meta = document.createElement("p");
    meta.className = "now-meta small";
    const elapsed = document.createElement("span");
    const percent = document.createElement("span");
    meta.append(elapsed, percent);
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.hidden = true;   // shown once the app reports progress
    bar.setAttribute("aria-label", `Progress of ${about.app}`);
    item.append(meta, bar);
    return { item, elapsed, percent, bar };
  }

  /** The "Take a break" buttons: "Resume now" while a break runs. */
  setBreak(pauseUntil, now = Date.now()) {
    const on = pauseUntil > now;
    this.resumeNow.hidden = !on;
    this.resumeNow.textContent = on ? `Resume now (paused until ${clockTime(pauseUntil)})` : "Resume now";
  }

  setDevice(deviceId) {
    this.deviceId.textContent = deviceId || "not registered yet";
  }

  setVolunteer({ name, tokens, rank }) {
    if (name) this.volunteerName.textContent = name;
    if (tokens !== undefined && tokens !== null) {
      // Tokens arrive as a decimal string (exact); shown as sent, plus the rank if known.
      this.volunteerTokens.textContent = rank ? `${tokens} (rank ${rank})` : String(tokens);
    }
  }

  setSettingsSync(enabled) {
    const note = document.getElementById("settings-sync");
    if (note && enabled) note.textContent = "Also kept with your account, for your other browsers.";
  }

  setRuntime(text) {
    this.runtimeInfo.textContent = text;
  }

  setLoad(text) {
    if (this.loadLine.textContent !== text) this.loadLine.textContent = text;
  }

  setOffline(text) {
    this.offlineInfo.textContent = text;
  }

  /**
   * Show one problem in the alert area. With `countdownTo` (a Date.now() value)
   * the title ends in a ticking "Ns"; only the static screen-reader copy is
   * announced, so an assertive alert does not speak every second.
   */
  showError(key, title, detail, { countdownTo = 0 } = {}) {
    const old = this.errors.get(key);
    if (old && old.title === title && old.detail === detail && old.countdownTo === countdownTo) {
      return;
    }
    this.errors.set(key, { title, detail, countdownTo });
    this.renderErrors();
  }

  tickCountdowns() {
    for (const span of this.alert.querySelectorAll("[data-countdown-to]")) {
      span.textContent = secondsLeft(Number(span.dataset.countdownTo));
    }
  }

  clearError(key) {
    if (this.errors.delete(key)) this.renderErrors();
  }

  renderErrors() {
    const items = [];
    for (const [key, { title, detail, countdownTo }] of this.errors) {
      const item = document.createElement("div");
      item.className = "alert-item";
      item.dataset.error = key;
      const strong = document.createElement("p");
      strong.className = "alert-title";
      if (countdownTo) {
        const visible = document.createElement("span");
        visible.setAttribute("aria-hidden", "true");
        const count = document.createElement("span");
        count.dataset.countdownTo = String(countdownTo);
        count.textContent = secondsLeft(countdownTo);
        visible.append(`${title} `, count);
        const spoken = document.createElement("span");
        spoken.className = "visually-hidden";
        spoken.textContent = `${title} ${secondsLeft(countdownTo)}`;
        strong.append(visible, spoken);
      } else {
        strong.textContent = title;
      }
      item.append(strong);
      if (detail) {
        const p = document.createElement("p");
        p.textContent = detail;
        item.append(p);
      }
      items.push(item);
    }
    // The alert region stays in the page (empty when all is well): live regions
    // must exist before their content changes to be announced.
    this.alert.replaceChildren(...items);
  }

  addLog(text, level = "info") {
    const item = document.createElement("li");
    item.className = `log-${level}`;
    const time = document.createElement("time");
    const now = new Date();
    time.dateTime = now.toISOString();
    time.textContent = now.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    item.append(time, document.createTextNode(` ${text}`));
    this.log.prepend(item);
    while (this.log.children.length > LOG_LIMIT) this.log.lastElementChild.remove();
  }
}

// --- the protocol client ----------------------------------------------------------------------

class VolunteerClient {
  constructor(config, view, { settings, device, outbox, wakeLock }) {
    this.config = config;
    this.view = view;
    this.settings = settings;    // see settings.js; changed through applySettings()
    this.device = device;        // DeviceState: visibility, battery, connection, online
    this.outbox = outbox;        // IndexedDB: results not yet acknowledged
    this.wakeLock = wakeLock;
    this.pool = new ComputePool(config, (stage) => this.view.setRuntime(stage),
                                (taskId, fraction) => this.onProgress(taskId, fraction));
    this.batteryHold = new BatteryHold();
    this.dutyInForce = settings.duty;   // the CPU use after Compute Pressure throttling

    this.started = false;        // Start was pressed at least once: keep the socket up
    this.running = false;        // the volunteer wants to compute (Start pressed)
    this.blocked = [];           // device rules holding computing back: [{key, reason}]
    this.runtimeFailed = false;
    this.runtimeAnnounced = false;

    this.socket = null;
    this.connected = false;      // welcome received on the current socket
    this.handshakeTimer = null;
    this.heartbeatTimer = null;
    this.lastPong = 0;
    this.reconnectAttempt = 0;
    this.reconnectTimer = null;
    this.reconnectAt = 0;
    this.fatal = false;          // the server refused our protocol: do not retry

    this.deviceId = null;
    this.maxInflight = 1;
    this.heartbeatS = 30;

    this.queue = [];             // tasks waiting for a free slot, oldest first
    this.active = new Map();     // task_id -> {task, slot, started}
    this.unacked = new Map();    // task_id -> outbox record: sent (or to send), not yet acked
    // Protocol extension "batch" (when welcome offers it): results go out in `results` frames,
    // with the request for more tasks riding along; `pending` holds those not sent yet on
    // this socket (every one of them is in `unacked` and in the outbox too).
    this.batch = false;
    this.maxBatch = 1;
    this.pending = new Set();
    this.seen = new Map();       // task_id -> last local state, for de-duplication
    this.requestOutstanding = false;
    this.retryTimer = null;
    this.retryAt = 0;
    this.timeline = [];          // [{slot, task_id, start, end}] (Date.now() ms): busy intervals
    this.computingSince = 0;

    this.counts = { done: 0, failed: 0, credit: 0 };  // credit in micro-credits
    this.creditBase = null;      // the all-time credit when this visit first learnt it
    this.earningsAt = 0;
    this.earningsTimer = null;
    this.ticker = setInterval(() => this.tick(), 1000);
    this.device.addEventListener("change", () => this.deviceChanged());
    this.wasOnline = this.device.snapshot().online;
    this.render();
  }

  /** Results stored on an earlier visit (or before a crash) go out as soon as possible. */
  async restoreOutbox() {
    let records = [];
    try {
      records = await this.outbox.all();
    } catch (error) {
      this.view.addLog(`Could not read results kept on this device: ${error.message}`, "error");
      return;
    }
    let restored = 0;
    for (const record of records) {
      if (this.unacked.has(record.task_id)) continue;
      if (this.resultExpired(record)) {
        this.outbox.delete(record.task_id);
        this.view.addLog(`Dropped the stored result of a ${record.label || "task"}: ` +
                         "its deadline passed more than a day ago.");
        continue;
      }
      this.unacked.set(record.task_id, record);
      this.remember(record.task_id, "reported");
      restored += 1;
    }
    if (restored) {
      this.view.addLog(`${restored} finished result${restored > 1 ? "s" : ""} kept on this device ` +
                       "will be sent once connected.");
      this.ensureSocket();
    }
    this.render();
  }

  /** Every second: the clock may end a break, enter or leave the schedule, end a battery hold. */
  tick() {
    const keys = blockers(this.settings, this.environment()).map((b) => b.key).join();
    if (keys !== this.blocked.map((b) => b.key).join()) this.applyRules();
    if (this.connected && Date.now() - this.earningsAt > EARNINGS_EVERY_MS) this.refreshEarnings();
    this.render();
  }

  /** The device as the rules see it: the browser's snapshot plus the clock and the hold. */
  environment() {
    const snapshot = this.device.snapshot();
    const now = Date.now();
    const date = new Date(now);
    return { ...snapshot, now, minute: date.getHours() * 60 + date.getMinutes(),
             batteryHoldUntil: this.batteryHold.until(this.settings, snapshot.battery, now) };
  }

  resultExpired(record) {
    const deadline = Date.parse(record.deadline);
    return Number.isFinite(deadline) && deadline + RESULT_KEEP_AFTER_DEADLINE_MS < Date.now();
  }

  // --- the volunteer's controls ---

  toggle() {
    if (this.running) this.pause();
    else this.start();
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.started = true;
    this.runtimeFailed = false;
    this.view.clearError("runtime");
    this.view.addLog("Started.");
    this.dropExpiredTasks();
    this.ensureSocket();
    this.applyRules({ quiet: true });
    if (this.blocked.length) this.view.addLog(`Waiting: ${this.blockedText()}.`);
    this.render();
  }

  pause() {
    if (!this.running) return;
    this.running = false;
    const interrupted = this.halt({ keepIdle: true });
    this.view.addLog(interrupted.length
      ? `Paused; the ${tasksText(interrupted)} will run again on Start.`
      : "Paused.");
    this.render();
  }

  /** New settings from the panel: store, then apply at once. Returns what was stored. */
  applySettings(settings) {
    this.settings = settings;
    this.applyRules();
    return settings;
  }

  /** The duty setting, or the pressure throttle, changed: the resting slots rest less or more. */
  applyDuty() {
    const duty = effectiveDuty(this.settings, this.device.snapshot().pressure);
    if (duty === this.dutyInForce) return;
    this.dutyInForce = duty;
    for (const slot of this.pool.slots) slot.reschedule(duty, () => this.pump());
  }

  deviceChanged() {
    const online = this.device.snapshot().online;
    if (online !== this.wasOnline) {
      this.wasOnline = online;
      if (online) this.backOnline();
      else this.wentOffline();
    }
    this.applyRules();
  }

  blockedText() {
    return this.blocked.map((b) => b.reason).join("; ");
  }

  /**
   * Bring the workers in line with the volunteer's wish, the settings and the device:
   * stop them while a rule holds computing back, (re)start them when it lets go,
   * and match the pool to the "Workers" setting.
   */
  applyRules({ quiet = false } = {}) {
    const wasBlocked = this.blocked.map((b) => b.key).join();
    this.blocked = blockers(this.settings, this.environment());
    this.applyDuty();
    const nowBlocked = this.blocked.map((b) => b.key).join();
    const mayCompute = this.running && this.blocked.length === 0;
    if (this.running && !mayCompute && this.pool.started && this.computingSince) {
      const interrupted = this.halt({ keepIdle: true });
      if (!quiet) {
        this.view.addLog(`Waiting: ${this.blockedText()}` + (interrupted.length
          ? `; the ${tasksText(interrupted)} will run again later.`
          : "."));
      }
    } else if (this.running && !quiet && wasBlocked !== nowBlocked && this.blocked.length) {
      this.view.addLog(`Waiting: ${this.blockedText()}.`);
    }
    if (mayCompute && !this.runtimeFailed) {
      if (wasBlocked && !nowBlocked && !quiet) this.view.addLog("Resuming.");
      const added = this.pool.resize(this.settings.workers);
      if (!this.computingSince) this.computingSince = Date.now();
      for (const slot of this.pool.slots) {
        if (slot.state === "stopped" && !slot.retiring) this.startSlot(slot, added.includes(slot));
      }
    }
    this.view.setRunning(this.running, this.running && this.blocked.length > 0);
    this.view.setBreak(this.settings.pauseUntil);
    this.wakeLock.want(this.settings.wakeLock && mayCompute);
    this.pump();
  }

  /** Stop computing and asking for work; the socket stays up for acks and resends. */
  halt({ keepIdle = false } = {}) {
    // Interrupted tasks go back to the front of the queue and run again later
    // (or, if the page is closed, time out on the server and are reissued).
    const interrupted = [...this.active.values()].map((entry) => entry.task);
    this.queue.unshift(...interrupted);
    for (const task of interrupted) this.remember(task.task_id, "queued");
    const now = Date.now();
    for (const entry of this.timeline) if (entry.end === null) entry.end = now;
    this.active.clear();
    this.pool.stopAll({ keepIdle });
    this.clearRetry();
    this.computingSince = 0;
    this.runtimeAnnounced = false;
    this.view.setRunning(this.running, this.running && this.blocked.length > 0);
    this.wakeLock.want(false);
    if (!this.pool.started) this.view.setRuntime("Stopped — starts again when computing resumes.");
    return interrupted;
  }

  startSlot(slot, added) {
    const started = performance.now();
    if (!this.pool.ready) this.view.setRuntime("Loading…");
    slot.start().then(() => {
      const ms = slot.loadMs ?? Math.round(performance.now() - started);
      this.view.setRuntime(`Python ${slot.python} (Pyodide), loaded in ${seconds(ms)}`);
      if (!this.runtimeAnnounced || added) {
        this.view.addLog(added && this.runtimeAnnounced
          ? `Worker ${slot.index + 1} ready in ${seconds(ms)}.`
          : `Python runtime ready in ${seconds(ms)}.`);
      }
      this.runtimeAnnounced = true;
      cacheRuntimeForOffline(this.view);
      this.pump();
    }, (error) => this.runtimeFailedToLoad(error));
    this.render();
  }

  runtimeFailedToLoad(error) {
    if (error instanceof Stopped || !this.running) return;
    this.running = false;
    this.halt();
    this.runtimeFailed = true;
    const limit = seconds(this.config.runtimeTimeoutMs);
    if (error.kind === "timeout") {
      this.view.showError("runtime",
        `The Python runtime failed to load within ${limit}.`,
        "Check your internet connection, then press Start to try again. On a slow connection " +
        "the first load (about 6 MB) can take a while; later loads come from this device.");
    } else {
      this.view.showError("runtime",
        `The Python runtime failed to load: ${error.message}`,
        "Press Start to try again. If it keeps failing, update your browser or try another one: " +
        "this page needs WebAssembly and module Web Workers.");
    }
    this.view.addLog(`Python runtime failed to load (${error.message}).`, "error");
    this.view.setRuntime("Not loaded (failed)");
    this.render();
  }

  // --- the socket ---

  /** Open the socket if it is needed (Start pressed, or results to deliver) and not open. */
  ensureSocket() {
    if (!this.socket && !this.reconnectTimer && !this.fatal) this.connect();
  }

  connect() {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.reconnectAt = 0;
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${window.location.host}${this.config.wsPath}`);
    this.socket = socket;
    this.connected = false;
    this.handshakeTimer = setTimeout(() => {
      if (this.socket === socket && !this.connected) this.dropConnection(4000, "handshake timeout");
    }, HANDSHAKE_TIMEOUT_MS);
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.sendFrame({
        type: "hello",
        protocol: this.config.protocol || 1,
        device_token: tokenStore.get() || null,
        client: CLIENT,
        capabilities: capabilities(),
        ...(hostReport ? { host: hostReport } : {}),
      });
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        this.view.addLog("The server sent a frame that is not JSON; ignored.", "error");
        return;
      }
      this.handle(message);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.connectionLost(event.code);
    };
    this.render();
  }

  /**
   * Give up on the current socket now, as if the network dropped it (used by tests,
   * the heartbeat and the browser's "offline" event). Not waiting for the close
   * handshake: on a dead network it never completes.
   */
  dropConnection(code = 4000, reason = "dropped by client") {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    try {
      socket.close(code, reason);
    } catch {
      /* already closing */
    }
    this.connectionLost(code);
  }

  /** Nothing left to do on the socket (never started, all results acked): close it. */
  closeIfIdle() {
    if (this.started || this.unacked.size || !this.socket) return;
    const socket = this.socket;
    this.socket = null;
    this.connected = false;
    clearTimeout(this.handshakeTimer);
    clearInterval(this.heartbeatTimer);
    socket.close(1000, "nothing to send");
    this.render();
  }

  connectionLost(code) {
    const wasConnected = this.connected;
    clearTimeout(this.handshakeTimer);
    clearInterval(this.heartbeatTimer);
    this.socket = null;
    this.connected = false;
    this.requestOutstanding = false;
    this.pending.clear();        // still in unacked: sent again after the next welcome
    this.clearRetry();
    if (code === 4402) {
      this.fatal = true;
      this.view.showError("connection", "This page is out of date for the server.",
        "Reload the page to get the current version of the volunteer client.");
      this.view.addLog("The server refused our protocol version.", "error");
      this.render();
      return;
    }
    if (code === 4403) {
      // The device's token was revoked (its account was deleted): it earns nothing more
      // under it. Forget it; a reload starts as a new anonymous device, by choice.
      tokenStore.forget();
      this.fatal = true;
      this.view.showError("connection", "This device was signed out.",
        "Its account was deleted. Reload the page to volunteer again as a new, anonymous device.");
      this.view.addLog("The server revoked this device (its account was deleted).", "error");
      this.render();
      return;
    }
    if (!this.started && !this.unacked.size) {
      this.render();
      return;
    }
    const offline = !this.device.snapshot().online;
    // Offline, the browser's "online" event brings the socket back (backOnline); a slow
    // retry stays in case that event never comes, and the log is spared an error a minute.
    const delay = offline ? BACKOFF_CAP_MS
      : backoffDelay(this.reconnectAttempt, { firstMs: BACKOFF_FIRST_MS, capMs: BACKOFF_CAP_MS });
    this.reconnectAttempt += 1;
    this.reconnectAt = Date.now() + delay;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
    if (offline) {
      this.render();
      return;
    }
    this.view.addLog(wasConnected
      ? `Connection lost (code ${code}); reconnecting in ${seconds(delay)}.`
      : `Could not connect (code ${code}); trying again in ${seconds(delay)}.`, "error");
    this.render();
  }

  wentOffline() {
    this.view.addLog("This device went offline; finished results are kept until it is back.");
    if (this.socket) this.dropConnection(4000, "offline");
  }

  backOnline() {
    this.view.addLog("Back online.");
    if (!this.started && !this.unacked.size) return;
    if (this.socket && this.connected) return;
    // Try now rather than at the end of a long backoff, with a little jitter so a
    // whole network coming back does not reconnect in one instant.
    clearTimeout(this.reconnectTimer);
    this.reconnectAttempt = Math.min(this.reconnectAttempt, 1);
    const delay = Math.round(Math.random() * ONLINE_JITTER_MS);
    this.reconnectAt = Date.now() + delay;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
    this.render();
  }

  sendFrame(frame) {
    const text = typeof frame === "string" ? frame : JSON.stringify(frame);
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(text);
    return true;
  }

  // --- server -> client ---

  handle(message) {
    switch (message && message.type) {
      case "welcome": return this.onWelcome(message);
      case "tasks": return this.onTasks(message);
      case "ack": return this.onAck(message);
      case "acks": return this.onAcks(message);
      case "cancel": return this.onCancel(message);
      case "stats": return this.onStats(message);
      case "error": return this.onError(message);
      case "pong": this.lastPong = Date.now(); return undefined;
      default:
        this.view.addLog(`Ignored an unknown message from the server (${message && message.type}).`);
        return undefined;
    }
  }

  onWelcome(message) {
    clearTimeout(this.handshakeTimer);
    const reconnected = this.reconnectAttempt > 0;
    this.connected = true;
    this.reconnectAttempt = 0;
    this.view.clearError("connection");
    if (message.device_token) tokenStore.set(message.device_token);
    this.deviceId = message.device_id;
    this.view.setDevice(message.device_id);
    this.maxInflight = Math.max(1, Number(message.max_inflight) || 1);
    this.heartbeatS = Math.max(5, Number(message.heartbeat_s) || 30);
    this.batch = Array.isArray(message.extensions) && message.extensions.includes("batch");
    this.maxBatch = Math.max(1, Math.min(64, Math.floor(Number(message.max_batch) || 1)));
    if (message.volunteer) {
      this.creditIs(creditMicroOf(message.volunteer));
      this.view.setVolunteer({ name: message.volunteer.name, tokens: message.volunteer.tokens });
    }
    this.refreshEarnings();
    this.view.addLog(reconnected
      ? `Reconnected as device ${message.device_id}.`
      : `Connected as device ${message.device_id}${message.device_token ? " (new device)" : ""}.`);
    this.lastPong = Date.now();
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.heartbeatS * 1000);
    // Results the server has not acknowledged yet go again: acks make resends safe.
    for (const [taskId, record] of this.unacked) {
      if (this.resultExpired(record)) {
        this.forgetResult(taskId);
        continue;
      }
      if (this.batch) this.pending.add(taskId);   // sent in results frames by pump()
      else this.sendFrame(record.frame);
    }
    this.dropExpiredTasks();
    this.pump();
  }

  heartbeat() {
    if (!this.connected) return;
    if (Date.now() - this.lastPong > this.heartbeatS * 2500) {
      this.view.addLog("The server stopped answering pings.", "error");
      this.dropConnection(4000, "no pong");
      return;
    }
    this.sendFrame({ type: "ping" });
  }

  onTasks(message) {
    this.requestOutstanding = false;
    const tasks = Array.isArray(message.tasks) ? message.tasks : [];
    let added = 0;
    for (const task of tasks) {
      if (!task || typeof task.task_id !== "string") continue;
      // After a reconnect the server sends our in-flight tasks again.
      if (this.seen.has(task.task_id)) continue;
      if (deadlinePassed(task)) {
        this.dropTask(task);
        continue;
      }
      this.queue.push(task);
      this.remember(task.task_id, "queued");
      added += 1;
    }
    const retry = Number(message.retry_after_s) || 0;
    if (tasks.length === 0) {
      this.scheduleRetry(Math.max(1, retry));
    } else if (added === 0) {
      this.scheduleRetry(Math.max(EMPTY_RESEND_DELAY_S, retry));
    }
    this.pump();
  }

  onAck(message) {
    const entry = this.unacked.get(message.task_id);
    if (!entry) return;   // an ack for a resend we already counted
    if (!message.accepted && message.reason === "rate_limited") {
      // Not stored and not final (README: send the result again later): it stays in the
      // outbox and goes again shortly (or after the next welcome, if the socket drops).
      this.resendLater(message.task_id);
      return;
    }
    this.forgetResult(message.task_id);
    this.remember(message.task_id, "acked");
    if (message.accepted) {
      if (entry.status === "ok") {
        this.counts.done += 1;
        this.view.addLog(`Finished a ${entry.label} task in ${seconds(entry.elapsed)}; ` +
                         `result accepted${message.duplicate ? " (already stored)" : ""}.`);
      } else {
        this.counts.failed += 1;
        this.view.addLog(`The error report of a ${entry.label} task was recorded.`);
      }
    } else {
      // A refusal is final too (not ours, unknown, too large): sending again changes nothing.
      this.counts.failed += 1;
      this.view.addLog(`The result of a ${entry.label} task was refused: ` +
                       `${message.reason || "no reason given"}.`, "error");
    }
    this.closeIfIdle();
    this.render();
  }

  /** Extension "batch": the acks of a results frame, one per result, each as an `ack`. */
  onAcks(message) {
    for (const ack of Array.isArray(message.acks) ? message.acks : []) {
      if (ack && typeof ack.task_id === "string") this.onAck(ack);
    }
  }

  onCancel(message) {
    for (const taskId of message.task_ids || []) {
      this.remember(taskId, "cancelled");
      const before = this.queue.length;
      this.queue = this.queue.filter((task) => task.task_id !== taskId);
      const entry = this.active.get(taskId);
      if (entry) {
        this.active.delete(taskId);
        this.endBusy(entry);
        this.view.addLog(`The server cancelled the ${entry.about.label} task (another ` +
                         "volunteer's result completed it); restarting the worker.");
        this.restartSlot(entry.slot);
      } else if (this.queue.length !== before) {
        this.view.addLog("The server cancelled a waiting task before it started.");
      }
    }
    this.pump();
  }

  onStats(message) {
    this.creditIs(creditMicroOf(message));
    this.view.setVolunteer({ tokens: message.tokens, rank: message.rank });
    this.refreshEarnings();
    this.render();
  }

  /** The all-time credit (micro-credits) as the server says it; the first value of this
   * visit is the base of "Credit earned" this visit. */
  creditIs(micro) {
    if (micro === null || micro === undefined) return;
    this.counts.credit = micro;
    if (this.creditBase === null) this.creditBase = micro;
  }

  /** Ask for the "All time" column soon (never more often than EARNINGS_MIN_GAP_MS). */
  refreshEarnings() {
    const token = tokenStore.get();
    if (!token || !this.config.earningsUrl || this.earningsTimer) return;
    const wait = Math.max(0, this.earningsAt + EARNINGS_MIN_GAP_MS - Date.now());
    this.earningsTimer = setTimeout(() => {
      this.earningsTimer = null;
      this.fetchEarnings(token);
    }, wait);
  }

  async fetchEarnings(token) {
    this.earningsAt = Date.now();
    try {
      const response = await fetch(this.config.earningsUrl, {
        headers: { "X-Device-Token": token, Accept: "application/json" },
        credentials: "same-origin", cache: "no-store",
      });
      // Read the body either way: an unread one keeps the request open.
      const data = await response.json().catch(() => null);
      if (!response.ok || !data) return;
      if (Number.isSafeInteger(data.credit_micro)) this.creditIs(data.credit_micro);
      this.view.setEarnings(data, this.config.policyUrl);
      this.render();
    } catch {
      /* offline or the server is busy: the column keeps its last numbers */
    }
  }

  /** The app reported progress: show it, and tell the server now and then (PROTOCOL.md). */
  onProgress(taskId, fraction) {
    const entry = this.active.get(taskId);
    if (!entry || !(fraction >= 0 && fraction <= 1)) return;
    entry.progress = fraction;
    const now = Date.now();
    if (this.connected && now - entry.progressSentAt >= PROGRESS_SEND_MS) {
      entry.progressSentAt = now;
      this.sendFrame({ type: "progress", task_id: taskId, fraction });
    }
    this.renderNow();
  }

  onError(message) {
    this.view.addLog(`Server error (${message.code}): ${message.message}`, "error");
    if (message.code === "rate_limited" || message.code === "server_error") {
      // The frame was dropped (README): a request riding on it gets no tasks frame and its
      // results no acks. Ask again shortly, with every unacknowledged result (the server
      // answers a result it already stored with `duplicate`), instead of waiting for a
      // reconnect.
      const socket = this.socket;
      setTimeout(() => {
        if (this.socket !== socket || !this.connected) return;
        this.requestOutstanding = false;
        if (this.batch) for (const taskId of this.unacked.keys()) this.pending.add(taskId);
        this.pump();
      }, RATE_LIMITED_RESEND_MS);
    }
    if (message.code === "unsupported_protocol") {
      this.view.showError("connection", "This page is out of date for the server.",
        "Reload the page to get the current version of the volunteer client.");
    }
  }

  // --- work ---

  remember(taskId, state) {
    this.seen.delete(taskId);
    this.seen.set(taskId, state);
    if (this.seen.size > SEEN_LIMIT) {
      for (const [id, old] of this.seen) {
        if (this.seen.size <= SEEN_LIMIT) break;
        if (old === "acked" || old === "dropped" || old === "cancelled") this.seen.delete(id);
      }
    }
  }

  dropTask(task) {
    this.remember(task.task_id, "dropped");
    this.view.addLog(`Dropped a ${aboutTask(task).label} task: its deadline has passed.`);
  }

  /** Tasks whose deadline passed while they waited (offline, paused, on battery) are not run. */
  dropExpiredTasks() {
    const keep = [];
    for (const task of this.queue) {
      if (deadlinePassed(task)) this.dropTask(task);
      else keep.push(task);
    }
    this.queue = keep;
  }

  resendLater(taskId) {
    const socket = this.socket;
    setTimeout(() => {
      if (this.socket !== socket || !this.connected || !this.unacked.has(taskId)) return;
      if (this.batch) {
        this.pending.add(taskId);
        this.pump();
      } else {
        this.sendFrame(this.unacked.get(taskId).frame);
      }
    }, RATE_LIMITED_RESEND_MS);
  }

  forgetResult(taskId) {
    this.unacked.delete(taskId);
    this.pending.delete(taskId);
    this.outbox.delete(taskId).catch(() => {});
  }

  scheduleRetry(delayS) {
    this.clearRetry();
    this.retryAt = Date.now() + delayS * 1000;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.retryAt = 0;
      this.pump();
    }, delayS * 1000);
    this.render();
  }

  clearRetry() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.retryAt = 0;
  }

  get computing() {
    return this.running && this.blocked.length === 0 && !this.runtimeFailed;
  }

  /** Start queued tasks on free slots, then ask for as many tasks as can run. */
  pump() {
    let want = 0;
    if (this.computing && this.pool.ready) {
      let slot;
      while (this.queue.length && (slot = this.pool.idleSlot(this.queue[0]))) {
        const task = this.queue.shift();
        if (deadlinePassed(task)) {
          this.dropTask(task);
          continue;
        }
        if (slot.appKey && slot.appKey !== appKey(task)) {
          // Another owner's code ran in this runtime and may have changed it (patched json,
          // hooked the worker): it must not see, or answer for, this task. A fresh frame.
          this.queue.unshift(task);
          this.view.addLog(`Worker ${slot.index + 1} restarts for ${aboutTask(task).label}: ` +
                           "each app's code gets a runtime of its own.");
          this.restartSlot(slot);
          continue;
        }
        this.runOn(slot, task);
      }
      const held = this.queue.length + this.active.size;
      if (this.batch) {
        want = this.batchWant(held);
      } else {
        const free = Math.min(this.pool.size - held, this.maxInflight - held - this.unacked.size);
        if (free > 0 && this.connected && !this.requestOutstanding && !this.retryTimer) {
          this.requestOutstanding = this.sendFrame({ type: "request", slots: free });
        }
      }
    }
    if (this.batch) this.sendPending(want);
    this.render();
  }

  /**
   * Extension "batch": work fetch with a low and a high water mark, as BOINC's client does.
   * The page keeps up to two tasks per worker (the high water mark, within max_inflight,
   * counting results not yet acknowledged except those that ride along: the server stores
   * them before it dispatches) and asks only once no task waits locally (the low water
   * mark), then for enough to fill up: one request per several results, not per result.
   */
  batchWant(held) {
    if (!this.connected || this.requestOutstanding || this.retryTimer || this.queue.length) return 0;
    const riding = Math.min(this.pending.size, this.maxBatch);
    const high = Math.min(2 * this.pool.size, this.maxInflight - (this.unacked.size - riding));
    return Math.max(0, high - held);
  }

  /** Extension "batch": send the pending results (a frame holds up to max_batch and stays
   *  under the frame limit), the request for `slots` tasks riding on the last frame. */
  sendPending(slots) {
    if (!this.connected) return;
    const ids = [...this.pending];
    if (!ids.length && slots > 0) {
      this.requestOutstanding = this.sendFrame({ type: "request", slots });
      return;
    }
    while (ids.length) {
      const items = [];
      const sentIds = [];
      let bytes = 64;
      while (ids.length && items.length < this.maxBatch) {
        const record = this.unacked.get(ids[0]);
        const size = record ? byteLength(record.frame) : 0;
        if (items.length && bytes + size > MAX_FRAME_BYTES - 1024) break;
        const id = ids.shift();
        if (!record) continue;
        items.push(record.frame);
        sentIds.push(id);
        bytes += size + 1;
      }
      const last = ids.length === 0;
      const ask = last && slots > 0 ? `,"slots":${slots}` : "";
      if (!items.length && !ask) continue;   // only forgotten results: nothing to send
      const sent = this.sendFrame(`{"type":"results","results":[${items.join(",")}]${ask}}`);
      if (!sent) return;   // still pending: the next welcome sends them
      for (const id of sentIds) this.pending.delete(id);
      if (ask) this.requestOutstanding = true;
    }
  }

  runOn(slot, task) {
    const entry = { task, slot, started: Date.now(), busy: null, about: aboutTask(task),
                    progress: null, progressSentAt: 0 };
    entry.busy = { slot: slot.index, task_id: task.task_id, start: entry.started, end: null };
    this.timeline.push(entry.busy);
    if (this.timeline.length > TIMELINE_LIMIT) this.timeline.shift();
    this.active.set(task.task_id, entry);
    this.remember(task.task_id, "running");
    slot.run(task).then((result) => {
      if (this.active.get(task.task_id)?.slot !== slot) return;
      this.active.delete(task.task_id);
      const busyMs = this.endBusy(entry);
      this.report(task, result);
      if (slot.retiring) {
        this.pool.remove(slot);
      } else if (result.kind === "internal") {
        this.restartSlot(slot);   // the runtime may be broken
      } else {
        slot.rest(busyMs, this.dutyInForce, () => this.pump());
      }
      this.pump();
    }, (error) => {
      if (!(error instanceof Stopped)) throw error;
    });
    this.render();
  }

  endBusy(entry) {
    if (entry.busy.end === null) entry.busy.end = Date.now();
    return entry.busy.end - entry.busy.start;
  }

  restartSlot(slot) {
    if (slot.retiring) {
      this.pool.remove(slot);
      return;
    }
    this.startSlot(slot, false);
  }

  report(task, result) {
    const id = shortId(task.task_id);
    const about = aboutTask(task);
    const elapsed = Math.max(0, Math.round(Number(result.elapsed_ms) || 0));
    let frame = null;
    let status = result.status;
    if (status === "ok") {
      // Splice Python's JSON text in untouched: big ints stay exact.
      frame = `{"type":"result","task_id":${JSON.stringify(task.task_id)},"status":"ok",` +
              `"output":${result.outputJson},"elapsed_ms":${elapsed}}`;
      const bytes = new TextEncoder().encode(frame).length;
      if (bytes > MAX_FRAME_BYTES - 1024) {
        status = "error";
        result = { ...result, error: `output too large (${bytes} bytes)` };
        frame = null;
      }
    }
    if (frame === null) {
      frame = JSON.stringify({ type: "result", task_id: task.task_id, status: "error",
                               error: String(result.error || "unknown error").slice(0, MAX_ERROR_CHARS),
                               elapsed_ms: elapsed });
    }
    if (status === "ok") {
      this.view.clearError("hash");
    } else {
      this.view.addLog(`The ${about.label} task failed after ${seconds(elapsed)}: ${result.error}`,
                       "error");
    }
    const app = task.app || {};
    if (result.kind === "hash_mismatch") {
      forgetCachedCode(this.config, app.code_url);
      this.view.showError("hash",
        `The code of ${app.name} v${app.version} failed its integrity check, so it was not run.`,
        "Its SHA-256 hash differs from the one the server announced; something between the " +
        "server and this browser changed it. The task was reported as failed. If this keeps " +
        "happening, reload the page, and tell the project's administrators.");
    }
    const record = { task_id: task.task_id, frame, status, elapsed,
                     label: about.label, deadline: task.deadline || null,
                     stored_at: Date.now() };
    this.unacked.set(task.task_id, record);
    this.remember(task.task_id, "reported");
    // Kept on the device until acked: survives a lost connection, a reload, a closed tab.
    this.outbox.put(record).catch((error) => {
      this.view.addLog(`Could not keep result ${id} on this device (${error.message}); ` +
                       "it is sent from memory.", "error");
    });
    if (this.connected && this.batch) this.pending.add(task.task_id);  // pump() sends it
    else if (this.connected) this.sendFrame(frame);
  }

  // --- what the volunteer sees ---

  /** The share of time the workers computed over the last few minutes, 0..1. */
  measuredLoad() {
    const now = Date.now();
    const from = Math.max(this.computingSince || now, now - DUTY_WINDOW_MS);
    const slots = Math.max(1, this.pool.size);
    return measuredDuty(this.timeline, from, now) / slots;
  }

  renderNow() {
    this.view.setNow([...this.active.values()].map((entry) => ({
      taskId: entry.task.task_id, about: entry.about, started: entry.started,
      progress: entry.progress })));
  }

  render() {
    this.view.setCounters({ ...this.counts, unsent: this.unacked.size,
                            visitCredit: this.counts.credit - (this.creditBase ?? this.counts.credit) });
    this.renderNow();
    const [text, phase] = this.describe();
    this.view.setStatus(text, phase);
    const online = this.device.snapshot().online;
    if (!this.connected && !this.fatal && !online && (this.started || this.unacked.size)) {
      this.view.showError("connection", "You are offline.",
        "Finished results are kept on this device and sent when the connection is back.");
    } else if (!this.connected && !this.fatal && this.reconnectAttempt > 0) {
      const detail = "Finished results are kept and sent once the connection is back. " +
                     "If this lasts, check your internet connection.";
      if (this.reconnectTimer) {
        this.view.showError("connection", "Connection lost — reconnecting in", detail,
                            { countdownTo: this.reconnectAt });
      } else {
        this.view.showError("connection", "Connection lost — reconnecting now…", detail);
      }
    }
    this.view.setLoad(this.describeLoad());
    this.view.tickCountdowns();
  }

  describeLoad() {
    if (!this.computing || !this.pool.ready) return "Not computing.";
    const workers = this.pool.size === 1 ? "1 worker" : `${this.pool.size} workers`;
    const used = Math.round(this.measuredLoad() * 100);
    const throttled = this.dutyInForce < this.settings.duty
      ? ` (lowered: the processor reports ${this.device.snapshot().pressure} pressure)` : "";
    return `${workers} at up to ${this.dutyInForce}% CPU${throttled}; busy ${used}% of the time lately.`;
  }

  describe() {
    if (!this.running) {
      if (this.runtimeFailed) return ["Stopped — the Python runtime did not load", "runtime-failed"];
      if (this.unacked.size && !this.started) {
        return [this.connected ? "Sending results kept on this device…"
                               : "Results kept on this device wait for a connection", "outbox"];
      }
      return this.started ? ["Paused", "paused"] : ["Ready — press Start to begin", "ready"];
    }
    if (this.blocked.length) {
      return [`Waiting — ${this.blockedText()}`, `blocked:${this.blocked.map((b) => b.key)}`];
    }
    if (!this.pool.ready) {
      return ["Loading the Python runtime…", "loading"];
    }
    const online = this.device.snapshot().online;
    if (!this.connected && !this.active.size) {
      if (!online) return ["Offline — computing resumes when the connection is back", "offline"];
      if (this.reconnectTimer) {
        return [`Connection lost — reconnecting in ${secondsLeft(this.reconnectAt)}`, "reconnecting"];
      }
      return ["Connecting…", "connecting"];
    }
    if (this.active.size) {
      const [{ about }] = this.active.values();
      const more = this.active.size > 1 ? ` (+${this.active.size - 1} more)` : "";
      return [`Computing ${about.app}${about.project ? ` for ${about.project}` : ""}${more}`,
              "computing"];
    }
    const resting = this.pool.slots.filter((slot) => slot.state === "ready" && slot.resting);
    if (resting.length && (this.queue.length || !this.retryTimer)) {
      const until = Math.min(...resting.map((slot) => slot.restUntil));
      return [`Resting (CPU use ${this.dutyInForce}%) — next task in ${secondsLeft(until)}`,
              "resting"];
    }
    if (this.retryTimer) {
      return [`Idle — no work available, asking again in ${secondsLeft(this.retryAt)}`, "idle"];
    }
    return ["Asking for work…", "asking"];
  }
}

// --- the service worker's caches ---------------------------------------------------

/**
 * Ask the service worker to keep the runtime for offline use. It caches what it serves
 * anyway; this covers a worker started before the service worker took control (the
 * files are then in the HTTP cache, so this costs no second download).
 */
function cacheRuntimeForOffline(view) {
  if (!("serviceWorker" in navigator) || cacheRuntimeForOffline.asked) return;
  cacheRuntimeForOffline.asked = true;
  withTimeout(navigator.serviceWorker.ready, 10_000)
    .then((registration) => askServiceWorker(registration?.active, { type: "cache-runtime" }, 120_000))
    .then(() => describeOffline())
    .then((text) => view.setOffline(text), () => {});
}

/** Code that failed its hash check must not stay in the service worker's cache. */
function forgetCachedCode(config, codeUrl) {
  if (!codeUrl || typeof caches === "undefined") return;
  caches.keys().then((names) => Promise.all(
    names.filter((name) => name.startsWith(config.appsCachePrefix || "sparecycles-apps-"))
      .map((name) => caches.open(name).then((cache) => cache.delete(codeUrl, { ignoreSearch: true }))),
  )).catch(() => {});
}

function withTimeout(promise, ms) {
  return Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(null), ms))]);
}

/** What the "Offline" line of the device card says. */
async function describeOffline() {
  if (!("serviceWorker" in navigator) || !window.isSecureContext) {
    return "Not available: this browser (or a page not served over HTTPS) cannot keep the app " +
           "for offline use.";
  }
  const registration = await withTimeout(navigator.serviceWorker.ready, 10_000);
  if (!registration) return "Not available: the offline helper (service worker) did not start.";
  const status = await askServiceWorker(registration.active, { type: "status" });
  if (!status) return "This page works offline.";
  return status.runtimeCached
    ? "Ready: this page and the Python runtime work without a connection."
    : "This page works offline; the Python runtime is kept after its first start.";
}

function askServiceWorker(worker, message, timeoutMs = 3_000) {
  if (!worker) return Promise.resolve(null);
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => resolve(null), timeoutMs);
    channel.port1.onmessage = (event) => {
      clearTimeout(timer);
      resolve(event.data);
    };
    worker.postMessage(message, [channel.port2]);
  });
}

// --- wiring ------------------------------------------------------------------------

function localStorageOrNull() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

const config = readConfig();
const cores = deviceCores();
const store = new SettingsStore(localStorageOrNull(), { cores, mobile: isMobile() });
const view = new PageView(document);
const device = new DeviceState(window);
const outbox = new Outbox();
let client = null;
const wakeLock = new WakeLockKeeper(window, () => client?.render());
client = new VolunteerClient(config, view, { settings: store.load(), device, outbox, wakeLock });
const sync = new SettingsSync(config.settingsUrl);
/** Store, apply and (for a logged-in volunteer) keep with the account: one way for all. */
function changeSettings(wanted) {
  const settings = client.applySettings(store.save({ ...client.settings, ...wanted }));
  sync.push(settings);
  return settings;
}
const panel = new SettingsPanel(document, {
  settings: client.settings,
  cores,
  support: device.support,
  onChange: (wanted) => changeSettings(wanted),
});
for (const button of view.pauseButtons) {
  button.addEventListener("click", () => {
    const until = pauseEnd(button.dataset.pauseFor);
    panel.show(changeSettings({ pauseUntil: until }));
    view.addLog(`Taking a break until ${clockTime(until)}` +
                `${button.dataset.pauseFor === "tomorrow" ? " tomorrow" : ""}; nothing is computed meanwhile.`);
  });
}
view.resumeNow.addEventListener("click", () => {
  panel.show(changeSettings({ pauseUntil: 0 }));
  view.addLog("Break ended.");
});
// A logged-in volunteer's settings follow them: a browser without settings of its own
// starts with the account's (all but a running break, which belongs to its device).
sync.pull().then((remote) => {
  view.setSettingsSync(sync.enabled);
  if (!sync.enabled) return;
  if (remote && !store.hasSaved()) {
    panel.show(client.applySettings(store.save({ ...remote, pauseUntil: 0 })));
    view.addLog("Applied the settings kept with your account.");
  } else if (!remote) {
    sync.push(client.settings);
  }
});
// claim.js made this browser's device (a claim code asked for before Start): show it.
window.addEventListener("sparecycles:device", (event) => {
  view.setDevice(event.detail.device_id);
  client.refreshEarnings();
});
client.refreshEarnings();
if (window.matchMedia("(min-width: 52rem)").matches) panel.details.open = true;
view.button.addEventListener("click", () => client.toggle());
view.setDevice(null);
client.restoreOutbox();
// Start is enabled once the battery has been read (or has had a second to answer), so a
// phone that must not compute off the charger never starts for a moment.
withTimeout(device.start(), 1_000).then(() => {
  panel.setSupport(document, device.support);   // getBattery() may have been refused
  client.applyRules({ quiet: true });
  view.button.disabled = false;
  // A warm start (issue 18): runtime and snapshot read from this device before Start, only
  // when both are here already (no network) and nothing holds computing back.
  if (!client.blocked.length) prepareRuntime(config);
});
describeOffline().then((text) => view.setOffline(text), () => view.setOffline("Not available."));
// A small handle for tests and for the curious in devtools.
window.sparecycles = Object.freeze({ client, view, config, store, panel, device, outbox, sync });
