// Spare Cycles live leaderboard.
//
// The server's /ws/leaderboards/ socket says only {"type": "changed"} (at most once a
// second). On each, this module refetches the JSON of the page on screen (same board,
// order and page number; the server marks the viewer's own row) and redraws the rows,
// the "your rank" line, the caption and the pager — the page never reloads. Numbers
// arrive formatted by the server (credit_text, rac_text), exactly as the page shows them.

const config = JSON.parse(document.getElementById("leaderboard-config").textContent);
const BACKOFF_FIRST_MS = 1_000;
const BACKOFF_CAP_MS = 30_000;
const ORDER_LABELS = { credit: "total credit", rac: "recent average credit" };

const $ = (id) => document.getElementById(id);

function element(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function pageHref(order, page) {
  return `?order=${encodeURIComponent(order)}&page=${page}`;
}

class LiveBoard {
  constructor() {
    this.kind = config.kind;
    this.rows = $("board-rows");
    this.status = $("lb-live");
    this.announcer = $("lb-announce");
    this.socket = null;
    this.attempt = 0;
    this.inflight = false;
    this.dirty = false;
    this.updates = 0;
    this.lastRank = null;
  }

  start() {
    this.connect();
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && this.dirty) this.refresh();
    });
    // claim.js tells us when the server has learnt whose device this browser holds.
    window.addEventListener("sparecycles:identified", () => this.refresh());
  }

  setLive(state, text) {
    this.status.dataset.state = state;
    this.status.querySelector(".live-text").textContent = text;
  }

  connect() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${window.location.host}${config.ws_path}`);
    this.socket = socket;
    socket.onopen = () => {
      const reconnected = this.attempt > 0;
      this.attempt = 0;
      this.setLive("on", "Live: updates as credit is granted");
      if (reconnected) this.refresh();   // catch up on what we missed while away
    };
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message && message.type === "changed") this.refresh();
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      const delay = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
      this.attempt += 1;
      this.setLive("reconnecting", "Live updates paused — reconnecting…");
      setTimeout(() => this.connect(), delay * (0.5 + Math.random() / 2));
    };
  }

  async refresh() {
    if (this.inflight || document.hidden) {
      this.dirty = true;    // fetched once the current request ends or the tab is shown
      return;
    }
    this.inflight = true;
    this.dirty = false;
    try {
      const response = await fetch(config.json_url, {
        headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store",
      });
      if (response.ok) this.render(await response.json());
    } catch {
      this.dirty = true;    // the next "changed" (or reconnect) tries again
    } finally {
      this.inflight = false;
      if (this.dirty && !document.hidden) this.refresh();
    }
  }

  render(data) {
    const before = new Map();
    for (const tr of this.rows.querySelectorAll("tr[data-id]")) {
      before.set(tr.dataset.id, tr.dataset.sig);
    }
    const rows = data.rows.map((row) => this.row(row, before));
    this.rows.replaceChildren(...rows);
    $("board-empty").hidden = data.rows.length > 0;
    $("board-caption").textContent =
      `${this.kind === "teams" ? "Teams" : "Volunteers"} by ${ORDER_LABELS[data.order]}, ` +
      `page ${data.page} of ${data.pages} (${data.total} in all)`;
    this.renderYou(data);
    this.renderPager(data);
    this.updates += 1;
    $("board").dataset.updates = String(this.updates);
  }

  row(row, before) {
    const sig = `${row.rank}|${row.credit_text}|${row.rac_text}`;
    const name = element("th", { scope: "row", className: "col-name" },
      element("a", { href: row.url, text: row.name }));
    if (row.you) name.append(" ", element("span", { className: "you-tag", text: "you" }));
    if (this.kind === "teams") {
      name.append(element("span", { className: "sub", text: plural(row.members || 0, "member") }));
    } else if (row.team) {
      name.append(element("span", { className: "sub", text: row.team }));
    }
    const tr = element("tr", { id: `row-${row.id}`, "data-id": String(row.id), "data-sig": sig },
      element("td", { className: "col-rank", text: String(row.rank) }),
      name,
      element("td", { className: "num", text: row.credit_text }),
      element("td", { className: "num", text: row.rac_text }));
    if (row.you) {
      tr.classList.add("is-you");
      tr.setAttribute("aria-current", "true");
    }
    const old = before.get(String(row.id));
    if (old !== undefined && old !== sig) tr.classList.add("bumped");
    else if (old === undefined && before.size) tr.classList.add("bumped");
    return tr;
  }

  renderYou(data) {
    const line = $("lb-you");
    const you = data.you;
    line.hidden = !you;
    if (!you) {
      line.replaceChildren();
      return;
    }
    const who = this.kind === "teams" ? `Your team, ${you.name}, is ` : "You are ";
    line.replaceChildren(who, element("strong", { text: `#${you.rank}` }),
      ` of ${data.total} by ${ORDER_LABELS[data.order]}`);
    if (you.page !== data.page) {
      line.append(" — ", element("a", { href: `${pageHref(data.order, you.page)}#row-${you.id}`,
                                        text: `show page ${you.page}` }));
    }
    line.append(".");
    if (this.lastRank !== null && this.lastRank !== you.rank) {
      this.announcer.textContent = `${this.kind === "teams" ? "Your team is" : "You are"} now number ${you.rank}.`;
    }
    this.lastRank = you.rank;
  }

  renderPager(data) {
    const pager = $("board-pager");
    pager.hidden = data.pages < 2;
    const parts = [];
    if (data.page > 1) {
      parts.push(element("a", { href: pageHref(data.order, 1), rel: "first", text: "« First" }),
                 element("a", { href: pageHref(data.order, data.page - 1), rel: "prev", text: "‹ Previous" }));
    }
    parts.push(element("span", { className: "pager-at", "aria-current": "page",
                                 text: `Page ${data.page} of ${data.pages}` }));
    if (data.page < data.pages) {
      parts.push(element("a", { href: pageHref(data.order, data.page + 1), rel: "next", text: "Next ›" }),
                 element("a", { href: pageHref(data.order, data.pages), rel: "last", text: "Last »" }));
    }
    pager.replaceChildren(...parts);
  }
}

const board = new LiveBoard();
// Rows rendered by the server carry no signature yet: give them one, so the first
// live update highlights only what really changed.
for (const tr of board.rows.querySelectorAll("tr[data-id]")) {
  const cells = tr.querySelectorAll("td");
  tr.dataset.sig = `${cells[0].textContent}|${cells[1].textContent}|${cells[2].textContent}`;
}
board.lastRank = (() => {
  const strong = document.querySelector("#lb-you strong");
  return strong ? Number(strong.textContent.slice(1)) : null;
})();
board.start();
window.sparecyclesBoard = board;   // for tests and the curious
