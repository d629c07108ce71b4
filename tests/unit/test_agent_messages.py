"""Error messages the agent records: long ones keep their beginning and their end, where Keras 3 names the cause."""

from __future__ import annotations

from harness.agent.common import MAX_MESSAGE, cut_message, error_info


def test_a_long_message_keeps_the_cause_keras_3_puts_last() -> None:
    config = "{" + ", ".join(f"'key{i}': {i}" for i in range(400)) + "}"
    message = (f"Error when deserializing class 'HubLayer' using config={config}.\n\n"
               "Exception encountered: SavedModel file does not exist at: /root/.cache/hub/abc")
    recorded = error_info(ValueError(message))["message"]
    assert len(recorded) == MAX_MESSAGE
    assert recorded.startswith("Error when deserializing class 'HubLayer'")
    assert recorded.endswith("SavedModel file does not exist at: /root/.cache/hub/abc")


def test_a_short_message_is_kept_whole() -> None:
    assert cut_message("bad marshal data (unknown type code)") == "bad marshal data (unknown type code)"
    assert cut_message("x" * MAX_MESSAGE) == "x" * MAX_MESSAGE
