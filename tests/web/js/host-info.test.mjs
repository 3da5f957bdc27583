// hello's host object (static/volunteer/host-info.js): honest, bounded, printable.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  browserOf, cleanText, hostInfo, measureFlops, osFromPlatform,
} from "../../../static/volunteer/host-info.js";

test("Chromium's client hints give the platform, version, architecture and browser", () => {
  const nav = {
    userAgentData: { platform: "Windows", brands: [
      { brand: "Not_A Brand", version: "8" }, { brand: "Chromium", version: "131" },
      { brand: "Google Chrome", version: "131" }] },
    platform: "Win32", userAgent: "Mozilla/5.0 (Windows NT 10.0) Chrome/131.0",
  };
  const host = hostInfo({ nav, details: { platformVersion: "15.0.0", architecture: "x86",
                                          bitness: "64" }, flops: 2.5e9, offsetMinutes: -60 });
  assert.deepEqual(host, { os_name: "Windows", os_version: "15.0.0", p_vendor: "x86",
                           p_model: "Google Chrome 131 (x86 64-bit)", p_fpops: 2.5e9,
                           timezone: 3600 });
});

test("without client hints the old navigator fields still say something true", () => {
  const nav = { platform: "Linux x86_64",
                userAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko Firefox/133.0" };
  const host = hostInfo({ nav, offsetMinutes: 300 });
  assert.deepEqual(host, { os_name: "Linux", p_model: "Firefox 133", timezone: -18000 });
  assert.equal(osFromPlatform("iPhone", ""), "iOS");
  assert.equal(osFromPlatform("MacIntel", ""), "macOS");
  assert.equal(osFromPlatform("Linux armv8l", "Android 14"), "Android");
  assert.equal(browserOf(null, "Mozilla/5.0 Version/17.4 Safari/605"), "Safari 17");
});

test("hostile or odd values are cleaned and bounded like the server wants", () => {
  assert.equal(cleanText("Lin\u0007ux\u0085"), "Linux");
  assert.equal(cleanText("x".repeat(500)).length, 64);
  assert.equal(cleanText(42), "");
  const nav = { userAgentData: { platform: "\u0000".repeat(3) + "y".repeat(100), brands: "no" },
                platform: "", userAgent: "" };
  const host = hostInfo({ nav, flops: Number.NaN, offsetMinutes: 99_999 });
  assert.equal(host.os_name.length, 64);
  assert.equal(host.timezone, -50_400);
  assert.equal("p_fpops" in host, false);
  assert.equal("p_model" in host, false);
});

test("the speed is measured, positive and within the server's bound", () => {
  const flops = measureFlops(undefined, 5);
  assert.ok(flops > 1e5 && flops <= 1e13, String(flops));
  let t = 0;
  assert.equal(measureFlops(() => (t += 0), 0), null);  // no time passed: no estimate
});
