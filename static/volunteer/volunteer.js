// Spare Cycles volunteer page: the UI and the protocol client (PROTOCOL.md v1).
//
// Pieces:
//   ComputeSlot  one module worker running Pyodide (compute-worker.js), one task at a time
//   ComputePool  the slots; one by default, more could be added without touching the client
//   VolunteerClient  the WebSocket conversation: hello/welcome, request/tasks,
//                result/ack, cancel, ping/pong, reconnects and resends
//   PageView     everything the volunteer sees; no protocol knowledge
//
// Nothing is fetched from anywhere but this server: the runtime comes from
// /static/pyodide/<version>/, app code from the task's code_url, both same-origin.

const CLIENT = Object.freeze({ name: "web", version: "1.0" });
const TOKEN_KEY = "sparecycles.deviceToken";
const LOG_LIMIT = 20;
const BACKOFF_FIRST_MS = 1_000;
const BACKOFF_CAP_MS = 30_000;
const HANDSHAKE_TIMEOUT_MS = 20_000;     // socket open + welcome
const MAX_FRAME_BYTES = 1024 * 1024;      // PROTOCOL.md: larger frames close the socket (1009)
const MAX_ERROR_CHARS = 2_000;
const EMPTY_RESEND_DELAY_S = 2;           // a tasks frame that brought nothing new
const SEEN_LIMIT = 1_000;                 // task ids remembered for de-duplication
const ANNOUNCE_AFTER_MS = 1_500;          // status must hold this long before it is announced

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
  config.workers = Math.max(1, Number(config.workers) || 1);
  return config;
}

function capabilities() {
  const caps = {
    runtimes: ["pyodide"],   // "wasm" only once compute-worker.js runs it
    cores: Math.max(1, navigator.hardwareConcurrency || 1),
    mobile: isMobile(),
  };
  if (typeof navigator.deviceMemory === "number") {
    caps.memory_mb = Math.round(navigator.deviceMemory * 1024);
  }
  return caps;
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
};

function shortId(taskId) {
  return String(taskId).slice(0, 8);
}

function seconds(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function secondsLeft(when) {
  return `${Math.max(0, Math.ceil((when - Date.now()) / 1000))}s`;
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
  }

  get idle() {
    return this.state === "ready" && this.task === null;
  }

  /** Start a fresh worker and load Pyodide; resolves when it can run tasks. */
  start() {
    this.stop();
    const worker = new Worker(this.config.workerUrl, { type: "module", name: `compute-${this.index}` });
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
      worker.postMessage({ type: "init", pyodideBase: this.config.pyodideBase,
                           lockFileURL: this.config.pyodideLockUrl || null });
    });
  }

  /** Run one task; resolves with the worker's result message, rejects with Stopped. */
  run(task) {
    if (!this.idle) throw new Error("slot is busy");
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

  /** Terminate the worker: the only way to stop Python mid-task. */
  stop() {
    if (this.worker) this.worker.terminate();
    this.worker = null;
    this.state = "stopped";
    this.task = null;
    const { pendingStart, pendingRun } = this;
    this.pendingStart = null;
    this.pendingRun = null;
    if (pendingStart) pendingStart.reject(new Stopped());
    if (pendingRun) pendingRun.reject(new Stopped());
  }
}

class ComputePool {
  constructor(config, onStage) {
    this.slots = Array.from({ length: config.workers }, (_, i) => new ComputeSlot(i, config, onStage));
  }

  get size() {
    return this.slots.length;
  }

  get loading() {
    return this.slots.some((slot) => slot.state === "loading");
  }

  get ready() {
    return this.slots.some((slot) => slot.state === "ready");
  }

  startAll() {
    return Promise.all(this.slots.map((slot) => slot.start()));
  }

  stopAll() {
    for (const slot of this.slots) slot.stop();
  }

  idleSlot() {
    return this.slots.find((slot) => slot.idle) || null;
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
    this.counters = { done: $("count-done"), failed: $("count-failed"), credit: $("count-credit") };
    this.deviceId = $("device-id");
    this.volunteerName = $("volunteer-name");
    this.volunteerTokens = $("volunteer-tokens");
    this.runtimeInfo = $("runtime-info");
    this.errors = new Map();   // key -> message; several problems can be shown at once
    this.lastAnnounced = "";
    this.pendingPhase = "";
    this.announceTimer = null;
  }

  setRunning(running) {
    this.button.textContent = running ? "Pause" : "Start";
    this.button.dataset.state = running ? "running" : "paused";
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

  setCounters({ done, failed, credit }) {
    this.counters.done.textContent = String(done);
    this.counters.failed.textContent = String(failed);
    this.counters.credit.textContent = Number(credit || 0).toLocaleString(undefined, {
      maximumFractionDigits: 2,
    });
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

  setRuntime(text) {
    this.runtimeInfo.textContent = text;
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
  constructor(config, view) {
    this.config = config;
    this.view = view;
    this.pool = new ComputePool(config, (stage) => this.view.setRuntime(stage));

    this.started = false;        // Start was pressed at least once: keep the socket up
    this.running = false;        // compute and ask for work
    this.runtimeFailed = false;

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
    this.active = new Map();     // task_id -> {task, slot}
    this.unacked = new Map();    // task_id -> {frame, status}: sent (or to send), not yet acked
    this.seen = new Map();       // task_id -> last local state, for de-duplication
    this.requestOutstanding = false;
    this.retryTimer = null;
    this.retryAt = 0;

    this.counts = { done: 0, failed: 0, credit: 0 };
    this.ticker = setInterval(() => this.render(), 1000);
    this.render();
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
    this.view.setRunning(true);
    this.view.clearError("runtime");
    this.view.addLog("Started.");
    if (!this.socket && !this.reconnectTimer && !this.fatal) this.connect();
    this.loadRuntime();
    this.render();
  }

  pause() {
    if (!this.running) return;
    const interrupted = this.halt();
    this.view.addLog(interrupted.length
      ? `Paused; task ${interrupted.map((t) => shortId(t.task_id)).join(", ")} will run again on Start.`
      : "Paused.");
    this.render();
  }

  /** Stop computing and asking for work; the socket stays up for acks and resends. */
  halt() {
    this.running = false;
    this.view.setRunning(false);
    // Interrupted tasks go back to the front of the queue and run again on Start
    // (or, if the page is closed, time out on the server and are reissued).
    const interrupted = [...this.active.values()].map((entry) => entry.task);
    this.queue.unshift(...interrupted);
    for (const task of interrupted) this.remember(task.task_id, "queued");
    this.active.clear();
    this.pool.stopAll();
    this.clearRetry();
    return interrupted;
  }

  loadRuntime() {
    const started = performance.now();
    this.runtimeFailed = false;
    this.view.setRuntime("Loading…");
    this.pool.startAll().then(() => {
      const slot = this.pool.slots[0];
      const ms = slot.loadMs ?? Math.round(performance.now() - started);
      this.view.setRuntime(`Python ${slot.python} (Pyodide), loaded in ${seconds(ms)}`);
      this.view.addLog(`Python runtime ready in ${seconds(ms)}.`);
      this.pump();
    }, (error) => this.runtimeFailedToLoad(error));
    this.render();
  }

  runtimeFailedToLoad(error) {
    if (error instanceof Stopped || !this.running) return;
    this.halt();
    this.runtimeFailed = true;
    const limit = seconds(this.config.runtimeTimeoutMs);
    if (error.kind === "timeout") {
      this.view.showError("runtime",
        `The Python runtime failed to load within ${limit}.`,
        "Check your internet connection, then press Start to try again. On a slow connection " +
        "the first load (about 14 MB) can take a while; later loads come from your browser's cache.");
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

  connect() {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.reconnectAt = 0;
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${window.location.host}${this.config.wsPath}`);
    this.socket = socket;
    this.connected = false;
    this.handshakeTimer = setTimeout(() => {
      if (this.socket === socket && !this.connected) socket.close(4000, "handshake timeout");
    }, HANDSHAKE_TIMEOUT_MS);
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.sendFrame({
        type: "hello",
        protocol: this.config.protocol || 1,
        device_token: tokenStore.get() || null,
        client: CLIENT,
        capabilities: capabilities(),
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

  /** Close the socket as if the network dropped it (used by tests and the heartbeat). */
  dropConnection() {
    if (this.socket) this.socket.close(4000, "dropped by client");
  }

  connectionLost(code) {
    const wasConnected = this.connected;
    clearTimeout(this.handshakeTimer);
    clearInterval(this.heartbeatTimer);
    this.socket = null;
    this.connected = false;
    this.requestOutstanding = false;
    this.clearRetry();
    if (code === 4402) {
      this.fatal = true;
      this.view.showError("connection", "This page is out of date for the server.",
        "Reload the page to get the current version of the volunteer client.");
      this.view.addLog("The server refused our protocol version.", "error");
      this.render();
      return;
    }
    const base = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * 2 ** this.reconnectAttempt);
    const delay = Math.round(base / 2 + Math.random() * (base / 2));   // "equal jitter"
    this.reconnectAttempt += 1;
    this.reconnectAt = Date.now() + delay;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
    this.view.addLog(wasConnected
      ? `Connection lost (code ${code}); reconnecting in ${seconds(delay)}.`
      : `Could not connect (code ${code}); trying again in ${seconds(delay)}.`, "error");
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
    if (message.volunteer) {
      if (message.volunteer.credit !== undefined) {
        this.counts.credit = Number(message.volunteer.credit) || 0;
      }
      this.view.setVolunteer({ name: message.volunteer.name, tokens: message.volunteer.tokens });
    }
    this.view.addLog(reconnected
      ? `Reconnected as device ${message.device_id}.`
      : `Connected as device ${message.device_id}${message.device_token ? " (new device)" : ""}.`);
    this.lastPong = Date.now();
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.heartbeatS * 1000);
    // Results the server has not acknowledged yet go again: acks make resends safe.
    for (const { frame } of this.unacked.values()) this.sendFrame(frame);
    this.pump();
  }

  heartbeat() {
    if (!this.connected) return;
    if (Date.now() - this.lastPong > this.heartbeatS * 2500) {
      this.view.addLog("The server stopped answering pings.", "error");
      this.dropConnection();
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
        this.remember(task.task_id, "dropped");
        this.view.addLog(`Dropped task ${shortId(task.task_id)}: its deadline has passed.`);
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
    this.unacked.delete(message.task_id);
    this.remember(message.task_id, "acked");
    const id = shortId(message.task_id);
    if (message.accepted) {
      if (entry.status === "ok") {
        this.counts.done += 1;
        this.view.addLog(`Task ${id} (${entry.label}) done in ${seconds(entry.elapsed)}; ` +
                         `result accepted${message.duplicate ? " (already stored)" : ""}.`);
      } else {
        this.counts.failed += 1;
        this.view.addLog(`Error report for task ${id} recorded.`);
      }
    } else {
      this.counts.failed += 1;
      this.view.addLog(`Result for task ${id} refused: ${message.reason || "no reason given"}.`, "error");
    }
    this.render();
  }

  onCancel(message) {
    for (const taskId of message.task_ids || []) {
      this.remember(taskId, "cancelled");
      const before = this.queue.length;
      this.queue = this.queue.filter((task) => task.task_id !== taskId);
      const entry = this.active.get(taskId);
      if (entry) {
        this.active.delete(taskId);
        this.view.addLog(`Task ${shortId(taskId)} cancelled by the server; restarting the worker.`);
        this.restartSlot(entry.slot);
      } else if (this.queue.length !== before) {
        this.view.addLog(`Task ${shortId(taskId)} cancelled by the server before it started.`);
      }
    }
    this.pump();
  }

  onStats(message) {
    if (message.credit !== undefined) this.counts.credit = Number(message.credit) || 0;
    this.view.setVolunteer({ tokens: message.tokens, rank: message.rank });
    this.render();
  }

  onError(message) {
    this.view.addLog(`Server error (${message.code}): ${message.message}`, "error");
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

  /** Start queued tasks on free slots, then ask for as many tasks as can run. */
  pump() {
    if (this.running && this.pool.ready) {
      let slot;
      while (this.queue.length && (slot = this.pool.idleSlot())) {
        const task = this.queue.shift();
        if (deadlinePassed(task)) {
          this.remember(task.task_id, "dropped");
          this.view.addLog(`Dropped task ${shortId(task.task_id)}: its deadline has passed.`);
          continue;
        }
        this.runOn(slot, task);
      }
      const held = this.queue.length + this.active.size;
      const free = Math.min(this.pool.size - held, this.maxInflight - held - this.unacked.size);
      if (free > 0 && this.connected && !this.requestOutstanding && !this.retryTimer) {
        this.requestOutstanding = this.sendFrame({ type: "request", slots: free });
      }
    }
    this.render();
  }

  runOn(slot, task) {
    this.active.set(task.task_id, { task, slot });
    this.remember(task.task_id, "running");
    slot.run(task).then((result) => {
      if (this.active.get(task.task_id)?.slot !== slot) return;
      this.active.delete(task.task_id);
      this.report(task, result);
      if (result.kind === "internal") this.restartSlot(slot);   // the runtime may be broken
      this.pump();
    }, (error) => {
      if (!(error instanceof Stopped)) throw error;
    });
    this.render();
  }

  restartSlot(slot) {
    slot.start().then(() => this.pump(), (error) => this.runtimeFailedToLoad(error));
    this.render();
  }

  report(task, result) {
    const id = shortId(task.task_id);
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
      this.view.addLog(`Task ${id} failed after ${seconds(elapsed)}: ${result.error}`, "error");
    }
    if (result.kind === "hash_mismatch") {
      const app = task.app || {};
      this.view.showError("hash",
        `The code of ${app.name} v${app.version} failed its integrity check, so it was not run.`,
        "Its SHA-256 hash differs from the one the server announced; something between the " +
        "server and this browser changed it. The task was reported as failed. If this keeps " +
        "happening, reload the page, and tell the project's administrators.");
    }
    const app = task.app || {};
    this.unacked.set(task.task_id, { frame, status, elapsed, label: `${app.name} v${app.version}` });
    this.remember(task.task_id, "reported");
    if (this.connected) this.sendFrame(frame);
  }

  // --- what the volunteer sees ---

  render() {
    this.view.setCounters(this.counts);
    const [text, phase] = this.describe();
    this.view.setStatus(text, phase);
    if (!this.connected && !this.fatal && this.reconnectAttempt > 0) {
      const detail = "Finished results are kept and sent once the connection is back. " +
                     "If this lasts, check your internet connection.";
      if (this.reconnectTimer) {
        this.view.showError("connection", "Connection lost — reconnecting in", detail,
                            { countdownTo: this.reconnectAt });
      } else {
        this.view.showError("connection", "Connection lost — reconnecting now…", detail);
      }
    }
    this.view.tickCountdowns();
  }

  describe() {
    if (!this.running) {
      if (this.runtimeFailed) return ["Stopped — the Python runtime did not load", "runtime-failed"];
      return this.started ? ["Paused", "paused"] : ["Ready — press Start to begin", "ready"];
    }
    if (!this.pool.ready) {
      return ["Loading the Python runtime…", "loading"];
    }
    if (!this.connected) {
      if (this.reconnectTimer) {
        return [`Connection lost — reconnecting in ${secondsLeft(this.reconnectAt)}`, "reconnecting"];
      }
      if (this.active.size === 0) return ["Connecting…", "connecting"];
    }
    if (this.active.size) {
      const [{ task }] = this.active.values();
      const app = task.app || {};
      const more = this.active.size > 1 ? ` (+${this.active.size - 1} more)` : "";
      return [`Computing task ${shortId(task.task_id)} of ${app.name} v${app.version}${more}`,
              "computing"];
    }
    if (this.retryTimer) {
      return [`Idle — no work available, asking again in ${secondsLeft(this.retryAt)}`, "idle"];
    }
    return ["Asking for work…", "asking"];
  }
}

// --- wiring ------------------------------------------------------------------------

const config = readConfig();
const view = new PageView(document);
const client = new VolunteerClient(config, view);
view.button.addEventListener("click", () => client.toggle());
view.button.disabled = false;
view.setDevice(null);
// A small handle for tests and for the curious in devtools.
window.sparecycles = Object.freeze({ client, view, config });
