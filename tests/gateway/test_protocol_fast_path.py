"""gateway/protocol.py's fast path (validate_json straight from the text) decides every frame
exactly as the step-by-step path does: the same message, or the same error code. (A file of
its own beside test_protocol.py, which stays as it was.)"""

import json

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from sparecycles.gateway.protocol import FrameError, _parse_slowly, parse_client_frame
from tests.gateway.test_fuzz import frame, json_value

TYPES = ["hello", "request", "result", "progress", "ping"]
near_valid = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES)},
    optional={"slots": st.one_of(st.integers(-5, 2000), json_value),
              "task_id": st.one_of(st.text(max_size=210), json_value),
              "status": st.one_of(st.sampled_from(["ok", "error"]), json_value),
              "output": json_value, "error": st.one_of(st.text(max_size=20), json_value),
              "elapsed_ms": st.one_of(st.integers(-5, 10**11), json_value),
              "fraction": st.one_of(st.floats(), json_value), "protocol": json_value,
              "device_token": json_value, "capabilities": json_value, "client": json_value},
).map(lambda d: json.dumps(d, allow_nan=True))


def decide(parse, text):
    try:
        return ("ok", parse(text))
    except FrameError as exc:
        return ("error", exc.code, exc.task_id)


@hsettings(max_examples=600, deadline=None)
@given(st.one_of(frame, near_valid))
def test_both_paths_decide_every_frame_alike(text):
    assert decide(parse_client_frame, text) == decide(_parse_slowly, text)


def test_known_edges_decide_alike():
    for text in ['{"type":"ping","type":"hello","protocol":1}',  # a repeated key: the last
                 '{"type":"result","task_id":"t","status":"ok","output":NaN}',
                 '{"type":"result","task_id":"t","status":"ok","output":[1e400]}',
                 '{"type":"progress","task_id":"t","fraction":NaN}',
                 '{"type":"request","slots":"3"}', '{"type":"request","slots":2.0}',
                 '{"type":"request","slots":true}', '{"type":"hello","protocol":"1"}',
                 '{"type":"result","task_id":"\\ud800","status":"ok"}',
                 '{"type":"ping"} ', ' {"type":"ping"}', '{"type":"ping"}x', "\ufeff{}"]:
        assert decide(parse_client_frame, text) == decide(_parse_slowly, text), text
