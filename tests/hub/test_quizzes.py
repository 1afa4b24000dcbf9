"""Quizzes: a poll whose correct option stays hidden until it closes; correct answers ranked by the
server time the vote arrived; a leaderboard over the broadcast's quizzes; results in the snapshot."""
from __future__ import annotations

import asyncio

from tests.hub.conftest import host_and_viewers, wait_for


async def _quiz(host, question, correct):
    ack = await host.call("poll.create", {"question": question, "options": ["red", "blue", "green"],
                                          "correct": correct, "duration_s": 60})
    assert ack["ok"], ack
    assert ack["poll"]["correct"] is None and ack["poll"]["quiz"] is True  # secret while open
    return ack["poll"]["id"]


async def test_correct_answers_are_ranked_by_server_receive_time(bc, server, clients, token):
    host, (v0, v1, v2) = await host_and_viewers(server, clients, token, 3)
    pid = await _quiz(host, "Sky?", 1)
    opened = (await wait_for(lambda: v0.of("poll.opened"), what="poll.opened"))[0]
    assert opened["correct"] is None
    assert (await v0.call("poll.vote", {"poll_id": pid, "option": 1}))["ok"]
    await asyncio.sleep(0.05)
    assert (await v1.call("poll.vote", {"poll_id": pid, "option": 0}))["ok"]
    await asyncio.sleep(0.05)
    assert (await v2.call("poll.vote", {"poll_id": pid, "option": 1}))["ok"]
    assert (await host.call("poll.close", {"poll_id": pid}))["ok"]
    closed = (await wait_for(lambda: v1.of("poll.closed"), what="poll.closed"))[0]
    assert closed["correct"] == 1
    quiz = closed["results"]
    assert (quiz["answered"], quiz["right"]) == (3, 2)
    assert [r["name"] for r in quiz["ranking"]] == ["V***0", "V***2"]  # first correct answer first
    assert quiz["ranking"][0]["ms"] <= quiz["ranking"][1]["ms"]
    assert "v0" not in str(closed)  # names are masked, ids never shown

    pid2 = await _quiz(host, "Grass?", 2)
    assert (await v2.call("poll.vote", {"poll_id": pid2, "option": 2}))["ok"]
    assert (await v0.call("poll.vote", {"poll_id": pid2, "option": 0}))["ok"]
    assert (await host.call("poll.close", {"poll_id": pid2}))["ok"]
    second = (await wait_for(lambda: len(v1.of("poll.closed")) == 2 and v1.of("poll.closed")[1], what="2nd"))
    board = second["results"]["leaderboard"]
    assert [(r["name"], r["correct"]) for r in board] == [("V***2", 2), ("V***0", 1)]
    late = await clients(server.url, token("viewer", "b1", "v0", name="Viewer0"))
    part = (await late.snapshot())["quiz"]
    assert part["last"]["poll_id"] == pid2 and part["last"]["correct"] == 2
    assert part["me"] == {"rank": 2, "correct": 1, "ms": quiz["ranking"][0]["ms"]}


async def test_a_plain_poll_is_no_quiz_and_a_bad_answer_is_refused(bc, server, clients, token):
    host, (v0,) = await host_and_viewers(server, clients, token, n=1)
    bad = await host.call("poll.create", {"question": "Q", "options": ["a", "b"], "correct": 2})
    assert bad["error"]["code"] == "VALIDATION" and bad["error"]["field"] == "correct"
    ack = await host.call("poll.create", {"question": "Q", "options": ["a", "b"]})
    assert ack["poll"]["quiz"] is False
    await v0.call("poll.vote", {"poll_id": ack["poll"]["id"], "option": 0})
    await host.call("poll.close", {"poll_id": ack["poll"]["id"]})
    closed = (await wait_for(lambda: v0.of("poll.closed"), what="poll.closed"))[0]
    assert closed["quiz"] is False and "results" not in closed and closed["correct"] is None
