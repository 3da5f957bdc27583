"""Scratch driver: run validator code in the real sandbox (the product's isolation command
and runner.mjs) and print every raw protocol line it writes.
Usage: .venv/bin/python tests/redteam/probe.py FILE.py [outputs-json] [pairs-json]"""
import json
import os
import subprocess
import sys
import time

sys.path[:0] = ["platform", "."]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparecycles.settings")
import django  # noqa: E402

django.setup()
from django.conf import settings  # noqa: E402

from sparecycles.sandbox.isolation import isolation  # noqa: E402

code = open(sys.argv[1]).read()
outputs = json.loads(sys.argv[2]) if len(sys.argv) > 2 else [None, None]
pairs = json.loads(sys.argv[3]) if len(sys.argv) > 3 else [[0, 1]]
iso = isolation()
print("mechanism", iso.mechanism, file=sys.stderr)
cmd = iso.command(memory_mb=settings.SANDBOX["MEMORY_MB"], cpu_s=60)
p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     env={}, cwd="/", start_new_session=True, text=True)
msgs = [{"nonce": "N0NCE"}, {"code": code}, {"id": 1, "outputs": outputs, "pairs": pairs}]
p.stdin.write("".join(json.dumps(m) + "\n" for m in msgs))
p.stdin.flush()
t = time.time()
try:
    out, err = p.communicate(timeout=float(os.environ.get("PROBE_TIMEOUT", "40")))
except subprocess.TimeoutExpired:
    os.killpg(p.pid, 9)
    out, err = p.communicate()
print("rc", p.returncode, "after", round(time.time() - t, 1), file=sys.stderr)
print(out)
print("STDERR:", err[-3000:], file=sys.stderr)
for line in out.splitlines():
    try:
        d = json.loads(json.loads(line)["raised"])
        for k, v in d.items():
            print("  ", k, "=>", v)
    except Exception:
        pass
