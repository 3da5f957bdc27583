// Registers the service worker (/sw.js) that makes Spare Cycles installable and lets
// the volunteer page start without a network. Loaded by base.html on every page.

const meta = document.querySelector('meta[name="sparecycles-service-worker"]');

function showUpdateNotice() {
  if (document.getElementById("update-notice")) return;
  const notice = document.createElement("div");
  notice.id = "update-notice";
  notice.className = "update-notice";
  notice.setAttribute("role", "status");
  const text = document.createElement("p");
  text.textContent = "A new version of this site is ready. Reload to use it; " +
                     "finished results are kept.";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button";
  button.textContent = "Reload";
  button.addEventListener("click", () => window.location.reload());
  notice.append(text, button);
  document.body.append(notice);
}

if (meta && "serviceWorker" in navigator && window.isSecureContext) {
  // A page that already had a worker and gets a new one is running the old code.
  const hadController = Boolean(navigator.serviceWorker.controller);
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (hadController) showUpdateNotice();
  });
  const register = () => {
    navigator.serviceWorker.register(meta.content, { scope: "/", updateViaCache: "none" })
      .catch((error) => console.warn("Spare Cycles: offline support is off:", error));
  };
  // After the page has loaded, so installing does not compete with it.
  if (document.readyState === "complete") register();
  else window.addEventListener("load", register, { once: true });
}
