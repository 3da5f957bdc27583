// Spare Cycles: this browser's device and the account.
//
// volunteer.js keeps the device token in localStorage ("sparecycles.deviceToken"). This
// module sends it — only to our own CSRF-protected endpoints, by POST — to:
//   [data-claim-form]         sign-up / log-in: fill the hidden field, offer the checkbox
//   [data-claim-browser]      dashboard: "Claim this browser"
//   [data-claim-code]         volunteer page: show a short code to claim it elsewhere
//   form[data-identify]       boards: let the session know whose row to highlight

const TOKEN_KEY = "sparecycles.deviceToken";

function deviceToken() {
  try {
    return window.localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;   // storage disabled: this browser has no lasting device
  }
}

function csrfCookie() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : null;
}

async function post(form, token, url = form.action) {
  const body = new FormData(form);
  body.set("token", token);
  const headers = { Accept: "application/json" };
  // The cookie is always current; the form's token may come from a page the service
  // worker cached before the cookie changed (logging in rotates it). Django reads the
  // form field first, so send the header alone when there is a cookie.
  const cookie = csrfCookie();
  if (cookie) {
    body.delete("csrfmiddlewaretoken");
    headers["X-CSRFToken"] = cookie;
  }
  const response = await fetch(url, { method: "POST", body, credentials: "same-origin", headers });
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = { detail: `The server answered ${response.status}; try again in a moment.` };
  }
  return { ok: response.ok, data };
}

function wireAccountForms(token) {
  for (const form of document.querySelectorAll("[data-claim-form]")) {
    const field = form.querySelector("input[name=device_token]");
    const choice = form.querySelector("[data-claim-choice]");
    if (!field || !choice) continue;
    field.value = token;
    choice.hidden = false;
  }
}

async function wireClaimBrowser(token) {
  const box = document.querySelector("[data-claim-browser]");
  if (!box) return;
  const form = box.querySelector("form");
  const offer = box.querySelector("[data-claim-offer]");
  const result = box.querySelector("[data-claim-result]");
  if (!token) {
    result.textContent = "This browser has not computed yet. Press Start on the volunteer " +
      "page and its credit is yours from the first result.";
    return;
  }
  // Offer the claim only when this browser's device is not the account's already.
  try {
    const { ok, data } = await post(form, token, box.dataset.identifyUrl);
    if (ok && data.device_volunteer_id !== null &&
        String(data.device_volunteer_id) === box.dataset.volunteerId) {
      result.textContent = `This browser is one of your devices (${data.device_id}).`;
      return;
    }
  } catch {
    /* unsure: offer the claim; the server refuses what it must */
  }
  offer.hidden = false;
  form.hidden = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    result.textContent = "Claiming…";
    try {
      const { ok, data } = await post(form, token);
      if (ok) {
        result.textContent = `${data.label} is now part of your account. Reloading…`;
        window.location.reload();
        return;
      }
      result.textContent = data.detail || "That did not work; try again.";
    } catch {
      result.textContent = "The server could not be reached. Check your connection and try again.";
    }
    button.disabled = false;
  });
}

function wireClaimCode(token) {
  const box = document.querySelector("[data-claim-code]");
  if (!box) return;
  const form = box.querySelector("form");
  const output = box.querySelector("[data-claim-code-output]");
  let timer = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearInterval(timer);
    // No device yet (Start never pressed): the server makes one now and sends its token,
    // which this browser keeps as if its first Start had made it.
    const current = deviceToken() || token || "";
    try {
      const { ok, data } = await post(form, current);
      if (!ok) {
        output.textContent = data.detail || "No code this time; try again.";
        return;
      }
      if (typeof data.device_token === "string" && data.device_token) {
        try {
          window.localStorage.setItem(TOKEN_KEY, data.device_token);
        } catch {
          output.textContent = "This browser does not let the page keep its device (storage " +
            "is off), so a code would claim nothing lasting. Allow site data, then try again.";
          return;
        }
        window.dispatchEvent(new CustomEvent("sparecycles:device",
                                             { detail: { device_id: data.device_id } }));
      }
      const until = Date.now() + data.ttl_s * 1000;
      const code = document.createElement("strong");
      code.className = "claim-code-value";
      code.textContent = data.code;
      const left = document.createElement("span");
      const tick = () => {
        const s = Math.max(0, Math.round((until - Date.now()) / 1000));
        left.textContent = s ? ` — valid for ${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}` : " — expired; ask for a new one";
        if (!s) clearInterval(timer);
      };
      tick();
      timer = setInterval(tick, 1000);
      output.replaceChildren("Your code: ", code, left);
    } catch {
      output.textContent = "The server could not be reached. Check your connection and try again.";
    }
  });
}

async function identify(token) {
  const form = document.querySelector("form[data-identify]");
  if (!form || !token) return;
  try {
    const { ok, data } = await post(form, token);
    if (ok && data.volunteer_id) {
      window.dispatchEvent(new CustomEvent("sparecycles:identified", { detail: data }));
    }
  } catch {
    /* highlighting our row is a nicety; the board works without it */
  }
}

const token = deviceToken();
wireClaimCode(token);
wireClaimBrowser(token);
if (token) {
  wireAccountForms(token);
  identify(token);
}
