"""faceproof.parallel: a request's parts run beside it on free helpers, or on its own thread
when every helper is taken; results come back in order and the earliest error wins."""

from __future__ import annotations

import threading
import time

import pytest

from faceproof.parallel import Helpers, available_cores, shared_helpers


def test_parts_run_on_a_free_helper_and_come_back_in_order() -> None:
    helpers = Helpers(1)
    try:
        here = threading.get_ident()
        ran_on: dict[int, int] = {}
        second_started = threading.Event()

        def second() -> int:
            ran_on[1] = threading.get_ident()
            second_started.set()
            return 10

        def first() -> int:
            # Wait until the helper has taken the second part: both run at once.
            assert second_started.wait(5)
            ran_on[0] = threading.get_ident()
            return 0

        assert helpers.all([first, second]) == [0, 10]
        assert ran_on[0] == here
        assert ran_on[1] != here  # the second part ran beside, on the helper
    finally:
        helpers.close()


def test_a_part_no_helper_has_started_runs_on_the_caller() -> None:
    helpers = Helpers(1)
    try:
        busy, release = threading.Event(), threading.Event()

        def block() -> bool:
            busy.set()
            return release.wait(5)

        blocker = helpers.beside(block)
        assert busy.wait(5)  # the only helper is taken by another request's part
        started = time.perf_counter()
        part = helpers.beside(threading.get_ident)
        assert part.result() == threading.get_ident()  # not queued behind the blocker
        assert time.perf_counter() - started < 4
        release.set()
        assert blocker.result() is True
    finally:
        helpers.close()


def test_without_helpers_everything_runs_here() -> None:
    helpers = Helpers(0)
    assert helpers.threads == 0
    here = threading.get_ident()
    assert helpers.all([threading.get_ident, threading.get_ident]) == [here, here]
    assert helpers.beside(lambda: 7).result() == 7


def test_the_earliest_error_wins_after_every_part_has_ended() -> None:
    helpers = Helpers(1)
    try:
        ended: list[str] = []

        def failing(name: str, delay: float) -> str:
            time.sleep(delay)
            ended.append(name)
            raise ValueError(name)

        def fine() -> str:
            time.sleep(0.05)
            ended.append("fine")
            return "fine"

        with pytest.raises(ValueError, match="first"):
            helpers.all([lambda: failing("first", 0.0), fine, lambda: failing("third", 0.0)])
        assert sorted(ended) == ["fine", "first", "third"]  # nothing left running
        with pytest.raises(ValueError, match="second"):
            helpers.all([fine, lambda: failing("second", 0.0)])
    finally:
        helpers.close()


def test_the_shared_helpers_leave_one_core_to_the_caller() -> None:
    shared = shared_helpers()
    assert shared is shared_helpers()
    assert shared.threads == available_cores() - 1


@pytest.mark.parametrize("threads", [0, 1])
def test_a_part_runs_once_however_often_its_result_is_asked(threads: int) -> None:
    helpers = Helpers(threads)
    try:
        runs: list[int] = []

        def count() -> int:
            runs.append(1)
            return len(runs)

        part = helpers.beside(count)
        assert [part.result(), part.result(), part.result()] == [1, 1, 1]

        def fail() -> None:
            runs.append(1)
            raise ValueError("once")

        failing = helpers.beside(fail)
        for _ in range(2):
            with pytest.raises(ValueError, match="once"):
                failing.result()
        assert len(runs) == 2
    finally:
        helpers.close()
