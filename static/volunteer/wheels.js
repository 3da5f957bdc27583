// Pure-Python wheels an app version needs, installed into the worker's Pyodide.
//
// An app version lists them in task.app.packages as "<url>#sha256=<hex>" (pip's URL-hash
// form); the URL is on this site (/apps/<name>/<version>/wheels/<file>). Other entries are
// names of packages in Pyodide's own lock file and go to pyodide.loadPackage as before.
//
// We don't use micropip (it is not in the npm pyodide package, and would want an index):
// the page (or, used on its own, the worker) downloads the wheel, the worker checks its SHA-256 like app code, and unpacks it into
// site-packages with Python's zipfile. A wheel is installed once per worker; installing a
// new one drops already imported modules of the same top-level packages, so the next
// import sees the new files.

const INSTALL_PY = `
import importlib, io, site, sys, zipfile

def sparecycles_install_wheel(data, filename):
    raw = data.to_bytes() if hasattr(data, "to_bytes") else bytes(data)
    target = site.getsitepackages()[0]
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        names = archive.namelist()
        for name in names:
            parts = name.replace("\\\\", "/").split("/")
            if name.startswith("/") or ".." in parts:
                raise ValueError(f"{filename} holds an unsafe path: {name!r}")
        archive.extractall(target)
    tops = set()
    for name in names:
        top = name.split("/")[0]
        if top.endswith((".dist-info", ".data")):
            continue
        tops.add(top[:-3] if top.endswith(".py") else top.split(".")[0])
    for module in list(sys.modules):
        if module.split(".")[0] in tops:
            del sys.modules[module]
    importlib.invalidate_caches()
    return ",".join(sorted(tops))
`;

const installed = new Set();   // sha256 of wheels unpacked in this worker

export class WheelError extends Error {
  constructor(message, kind = "fetch") {
    super(message);
    this.kind = kind;
  }
}

/** Split app.packages into Pyodide package names and our wheels {url, sha256, filename}. */
export function splitPackages(packages) {
  const names = [];
  const wheels = [];
  for (const entry of packages || []) {
    const text = String(entry);
    const match = /^(?<url>[^#]+\.whl)#sha256=(?<sha256>[0-9a-fA-F]{64})$/.exec(text);
    if (match) {
      const url = match.groups.url;
      wheels.push({ url, sha256: match.groups.sha256.toLowerCase(),
                    filename: decodeURIComponent(url.split("/").pop()) });
    } else {
      names.push(text);
    }
  }
  return { names, wheels };
}

async function download(wheel) {
  let response;
  try {
    response = await fetch(wheel.url, { credentials: "same-origin" });
  } catch (error) {
    throw new WheelError(`could not download ${wheel.filename}: ${error.message}`);
  }
  if (!response.ok) {
    throw new WheelError(`could not download ${wheel.filename}: HTTP ${response.status}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

/** Check and unpack each wheel not installed yet (its bytes given, or downloaded). */
export async function installWheels(pyodide, wheels, sha256Hex) {
  for (const wheel of wheels) {
    if (installed.has(wheel.sha256)) continue;
    const bytes = wheel.bytes ? new Uint8Array(wheel.bytes) : await download(wheel);
    const actual = await sha256Hex(bytes);
    if (actual !== wheel.sha256) {
      const error = new WheelError(`${wheel.filename}: hash mismatch`, "hash_mismatch");
      error.expected = wheel.sha256;
      error.actual = actual;
      throw error;
    }
    if (!pyodide.globals.get("sparecycles_install_wheel")) pyodide.runPython(INSTALL_PY);
    const install = pyodide.globals.get("sparecycles_install_wheel");
    try {
      install(bytes, wheel.filename);
    } catch (error) {
      const lines = String(error.message || error).trim().split("\n");
      throw new WheelError(`could not install ${wheel.filename}: ${lines[lines.length - 1]}`,
                           "python");
    } finally {
      install.destroy();
    }
    installed.add(wheel.sha256);
  }
}
