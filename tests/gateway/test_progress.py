"""The optional `progress` frame (PROTOCOL.md): checked at the socket like every frame; a
hostile one gets an error reply and never reaches anything else."""

import pytest

from sparecycles.gateway.protocol import FrameError, Progress, parse_client_frame
from tests.gateway.test_consumers import hello

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("text", [
    '{"type": "progress", "task_id": "t", "fraction": 0}',
    '{"type": "progress", "task_id": "t", "fraction": 0.25}',
    '{"type": "progress", "task_id": "t", "fraction": 1}',
])
def test_a_fraction_from_0_to_1_is_a_progress_message(text):
    message = parse_client_frame(text)
    assert isinstance(message, Progress) and 0 <= message.fraction <= 1


@pytest.mark.parametrize("text", [
    '{"type": "progress", "task_id": "t", "fraction": NaN}',
    '{"type": "progress", "task_id": "t", "fraction": Infinity}',
    '{"type": "progress", "task_id": "t", "fraction": -0.01}',
    '{"type": "progress", "task_id": "t", "fraction": 1.5}',
    '{"type": "progress", "task_id": "t", "fraction": "0.5"}',
    '{"type": "progress", "task_id": "t", "fraction": true}',
    '{"type": "progress", "task_id": "t", "fraction": null}',
    '{"type": "progress", "task_id": "t"}',
    '{"type": "progress", "fraction": 0.5}',
    '{"type": "progress", "task_id": "", "fraction": 0.5}',
    '{"type": "progress", "task_id": 7, "fraction": 0.5}',
    '{"type": "progress", "task_id": "' + "x" * 201 + '", "fraction": 0.5}',
])
def test_hostile_progress_frames_are_refused(text):
    with pytest.raises(FrameError) as caught:
        parse_client_frame(text)
    assert caught.value.code == "invalid" and "progress" in caught.value.message


async def test_progress_for_a_task_not_ours_is_ignored_and_the_socket_carries_on():
    communicator, _ = await hello()
    await communicator.send_json_to({"type": "progress", "task_id": "not-a-task", "fraction": 0.5})
    await communicator.send_to(text_data='{"type": "progress", "task_id": "x", "fraction": NaN}')
    error = await communicator.receive_json_from()
    assert error["type"] == "error" and error["code"] == "invalid"
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()
