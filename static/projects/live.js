// Live regions: a project page's progress and top contributors, an owner's batch status.
//
// Elements with data-live-url and data-live-ws listen on their socket (a read-only feed
// that says {"type": "changed"} at most once a second; regions naming the same socket
// share one) and then each fetches its data-live-url, an HTML fragment the server renders
// with the same template as the page, and swaps it in: no reload, and the page works as
// before without JavaScript. data-live-status names an element that shows whether
// updates are live; it gets data-state (on, reconnecting) and data-updates (how many
// refreshes so far).
(() => {
  "use strict";
  const BACKOFF_FIRST_MS = 1_000;
  const BACKOFF_CAP_MS = 30_000;
  const TRAILING_REFRESH_MS = 2_500;

  class LiveFeed {
    constructor(path, regions) {
      this.path = path;
      this.regions = regions;
      this.attempt = 0;
      this.connect();
    }

    setState(state) {
      for (const region of this.regions) region.setState(state);
    }

    refresh() {
      for (const region of this.regions) region.refresh();
    }

    connect() {
      const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      const socket = new WebSocket(`${scheme}//${window.location.host}${this.path}`);
      this.socket = socket;
      socket.onopen = () => {
        const reconnected = this.attempt > 0;
        this.attempt = 0;
        this.setState("on");
        if (reconnected) this.refresh();   // catch up on what was missed while away
      };
      socket.onmessage = (event) => {
        let message = null;
        try {
          message = JSON.parse(event.data);
        } catch {
          return;
        }
        if (message && message.type === "changed") {
          this.refresh();
          // Once more after the changes stop: the server shares each part among viewers
          // for a second, so the fetch right after a change may get the one before it.
          clearTimeout(this.trailing);
          this.trailing = setTimeout(() => this.refresh(), TRAILING_REFRESH_MS);
        }
      };
      socket.onclose = (event) => {
        if (this.socket !== socket) return;
        if (event.code === 4404) {   // no such (public or owned) thing: stop trying
          this.setState("off");
          return;
        }
        const delay = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
        this.attempt += 1;
        this.setState("reconnecting");
        setTimeout(() => this.connect(), delay * (0.5 + Math.random() / 2));
      };
    }
  }

  class LiveRegion {
    constructor(element) {
      this.element = element;
      this.status = element.dataset.liveStatus
        ? document.getElementById(element.dataset.liveStatus) : null;
      this.inflight = false;
      this.dirty = false;
      this.updates = 0;
      document.addEventListener("visibilitychange", () => {
        if (!document.hidden && this.dirty) this.refresh();
      });
    }

    setState(state) {
      if (!this.status) return;
      this.status.dataset.state = state;
      this.status.hidden = state !== "on";
    }

    async refresh() {
      if (this.inflight || document.hidden) {
        this.dirty = true;   // fetched once the current request ends or the tab is shown
        return;
      }
      this.inflight = true;
      this.dirty = false;
      try {
        const response = await fetch(this.element.dataset.liveUrl, {
          headers: { Accept: "text/html" }, credentials: "same-origin", cache: "no-store",
        });
        if (response.ok) {
          this.element.innerHTML = await response.text();
          this.updates += 1;
          this.element.dataset.updates = String(this.updates);
          if (this.status) this.status.dataset.updates = String(this.updates);
        }
      } catch {
        this.dirty = true;   // the next "changed" (or reconnect) tries again
      } finally {
        this.inflight = false;
        if (this.dirty && !document.hidden) this.refresh();
      }
    }
  }

  const start = () => {
    const feeds = new Map();
    for (const element of document.querySelectorAll("[data-live-url][data-live-ws]")) {
      const path = element.dataset.liveWs;
      if (!feeds.has(path)) feeds.set(path, []);
      feeds.get(path).push(new LiveRegion(element));
    }
    for (const [path, regions] of feeds) new LiveFeed(path, regions);
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
