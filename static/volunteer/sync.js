// The volunteer page's settings kept with a logged-in volunteer's account
// (/me/compute-settings/, accounts.views.compute_settings): pulled once on load, pushed
// after changes. Logged out, the server answers 401 and nothing is sent again.

const PUSH_DELAY_MS = 1_000;   // settings changed in a row (a slider) go out once

function csrfCookie() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : null;
}

export class SettingsSync {
  constructor(url) {
    this.url = url || null;
    this.enabled = false;      // known to be logged in
    this.timer = null;
    this.pending = null;
  }

  /** The account's settings (null if none yet); sets `enabled`. Never throws. */
  async pull() {
    if (!this.url) return null;
    try {
      const response = await fetch(this.url, { credentials: "same-origin", cache: "no-store",
                                               headers: { Accept: "application/json" } });
      // Read the body either way: an unread one keeps the request open (and the page busy).
      const data = await response.json().catch(() => null);
      if (!response.ok) return null;
      this.enabled = true;
      return data && typeof data.settings === "object" ? data.settings : null;
    } catch {
      return null;
    }
  }

  push(settings) {
    if (!this.enabled) return;
    this.pending = settings;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.send(), PUSH_DELAY_MS);
  }

  async send() {
    const settings = this.pending;
    this.pending = null;
    const token = csrfCookie();
    if (!settings || !token) return;
    try {
      const response = await fetch(this.url, {
        method: "PUT", credentials: "same-origin", body: JSON.stringify(settings),
        headers: { "Content-Type": "application/json", "X-CSRFToken": token,
                   Accept: "application/json" },
      });
      await response.text();
    } catch {
      /* offline: this browser keeps them; the next change tries again */
    }
  }
}
