// What the page tells the server about its device for the statistics exports: hello's
// optional `host` object (PROTOCOL extension; the server's gateway/protocol.py HostInfo).
//
// Only what a browser can honestly say: the user agent's platform and version, the CPU
// architecture when the browser tells it, the browser and its version, the time zone, and a
// speed this page measured itself (a browser estimate, labelled so in the exports). Nothing
// is fingerprinted beyond what the browser already offers every page.

const TEXT_LIMIT = 64;
const MODEL_LIMIT = 128;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
const MEASURE_MS = 40;

export function cleanText(value, limit = TEXT_LIMIT) {
  return typeof value === "string" ? value.replace(CONTROL, "").trim().slice(0, limit) : "";
}

// navigator.platform's old names ("Win32", "MacIntel", "Linux x86_64", "iPhone") to an OS.
export function osFromPlatform(platform, userAgent = "") {
  const p = `${platform || ""} ${userAgent || ""}`;
  if (/android/i.test(p)) return "Android";
  if (/iphone|ipad|ipod/i.test(p)) return "iOS";
  if (/win/i.test(platform || "")) return "Windows";
  if (/mac/i.test(platform || "")) return "macOS";
  if (/cros/i.test(p)) return "Chrome OS";
  if (/linux/i.test(p)) return "Linux";
  return cleanText(platform);
}

// "Chrome 131", "Firefox 133", "Safari 17": the first real brand, else the user agent's.
export function browserOf(uaData, userAgent = "") {
  const brands = (uaData && Array.isArray(uaData.brands)) ? uaData.brands : [];
  const real = brands.filter((b) => b && typeof b.brand === "string" && !/not.?a.?brand/i.test(b.brand));
  const pick = real.find((b) => b.brand !== "Chromium") || real[0];
  if (pick) return `${pick.brand} ${pick.version}`;
  const match = /(Firefox|Edg|OPR|Chrome|Version)\/(\d+)/.exec(userAgent || "");
  if (!match) return "";
  const name = { Edg: "Edge", OPR: "Opera", Version: "Safari" }[match[1]] || match[1];
  return `${name} ${match[2]}`;
}

// Floating-point operations a second, from a short multiply-add loop on this thread.
export function measureFlops(now = () => performance.now(), budgetMs = MEASURE_MS) {
  let x = 1.0000001, y = 0.9999999, ops = 0;
  const start = now();
  let elapsed = 0;
  while (elapsed < budgetMs) {
    for (let i = 0; i < 100_000; i++) {
      x = x * y + 1e-9;
      y = y * x - 1e-9;
    }
    ops += 400_000;  // two multiplies and two adds per turn
    elapsed = now() - start;
  }
  if (!Number.isFinite(x + y) || elapsed <= 0) return null;
  const flops = ops / (elapsed / 1000);
  return flops > 0 && flops <= 1e13 ? Math.round(flops) : null;
}

// The host object from what the browser offers; `details` is the resolved
// userAgentData.getHighEntropyValues() result, or null.
export function hostInfo({ nav, details = null, flops = null, offsetMinutes = 0 }) {
  const uaData = nav.userAgentData || null;
  const host = {
    os_name: cleanText((uaData && uaData.platform) || osFromPlatform(nav.platform, nav.userAgent)),
    timezone: Math.max(-50_400, Math.min(50_400, Math.round(-offsetMinutes * 60))),
  };
  const osVersion = cleanText(details && details.platformVersion);
  if (osVersion) host.os_version = osVersion;
  const arch = cleanText(details && details.architecture);
  if (arch) host.p_vendor = arch;
  const browser = browserOf(uaData, nav.userAgent);
  const bits = cleanText(details && details.bitness);
  const model = browser + (arch ? ` (${arch}${bits ? ` ${bits}-bit` : ""})` : "");
  if (model) host.p_model = cleanText(model, MODEL_LIMIT);
  if (Number.isFinite(flops) && flops > 0) host.p_fpops = flops;
  return host;
}

// Gathers once per page: the high-entropy hints (Chromium only) and the measured speed.
export async function gatherHostInfo(nav = navigator) {
  let details = null;
  try {
    if (nav.userAgentData && nav.userAgentData.getHighEntropyValues) {
      details = await nav.userAgentData.getHighEntropyValues(
        ["platformVersion", "architecture", "bitness"]);
    }
  } catch {
    details = null;
  }
  return hostInfo({ nav, details, flops: measureFlops(),
                    offsetMinutes: new Date().getTimezoneOffset() });
}
