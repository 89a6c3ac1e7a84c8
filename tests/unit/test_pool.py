"""runner/pool.py without servers: which failures go to another server, and the shared job queue
(each job taken once, retried where it may run, given up when no server may run it)."""
from __future__ import annotations

import threading

from prompt_media_pkg.runner.comfy_client import RunResult
from prompt_media_pkg.runner.pool import JobQueue, infrastructure_failure, lost_result


def failed(exception_type: str, message: str) -> RunResult:
    return RunResult("error", "p", history={"status": {"status_str": "error", "messages": [
        ["execution_error", {"exception_type": exception_type, "exception_message": message, "node_id": "3"}]]}})


def test_out_of_memory_goes_to_another_server_and_bad_input_does_not():
    assert infrastructure_failure(failed("torch.OutOfMemoryError", "CUDA out of memory. Tried to allocate 2 GiB")) \
        == "out of memory (CUDA out of memory. Tried to allocate 2 GiB)"
    assert infrastructure_failure(failed("RuntimeError", "MPS backend out of memory")).startswith("out of memory")
    assert infrastructure_failure(failed("ValueError", "width must be a multiple of 8")) is None
    assert infrastructure_failure(failed("FileNotFoundError", "no such checkpoint")) is None
    assert infrastructure_failure(RunResult("success", "p")) is None
    assert infrastructure_failure(RunResult("rejected", None, 400, {"error": "out of memory"})) is None


def test_a_lost_result_reads_as_an_error_with_the_reason():
    result = lost_result("GET http://a/history: connection refused")
    assert result.status == "error"
    assert result.error_summary().startswith("execution error in node None (None): ServerLost: GET http://a/")


def test_each_job_is_taken_once_lowest_first_by_concurrent_servers():
    jobs = JobQueue(range(200), max_retries=3)
    taken: dict[str, list[int]] = {"a": [], "b": [], "c": []}

    def pull(server: str) -> None:
        while (index := jobs.take(server)) is not None:
            taken[server].append(index)
            jobs.finish(index)

    threads = [threading.Thread(target=pull, args=(s,)) for s in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(sum(taken.values(), [])) == list(range(200))
    assert all(order == sorted(order) for order in taken.values())
    assert not jobs.wait_for_work("a")                       # nothing pending, nothing in flight


def test_a_job_that_ran_out_of_memory_goes_to_another_server_only():
    jobs = JobQueue([0, 1], max_retries=3)
    assert jobs.take("a") == 0
    assert jobs.give_back([0], avoid="a") == []
    assert jobs.take("a") == 1                               # a skips job 0
    assert jobs.take("a") is None
    assert jobs.take("b") == 0
    assert jobs.unrunnable({"a", "b"}) == []


def test_a_job_no_live_server_may_run_is_given_up():
    jobs = JobQueue([0], max_retries=3)
    jobs.take("a")
    jobs.give_back([0], avoid="a")
    assert jobs.unrunnable({"b", "a"}) == []                 # b may still run it
    assert jobs.unrunnable({"a"}) == [0]                     # b has left
    assert not jobs.wait_for_work("a")


def test_a_job_is_retried_at_most_max_retries_times():
    jobs = JobQueue([5], max_retries=2)
    for _ in range(2):
        assert jobs.take("a") == 5
        assert jobs.give_back([5]) == []
    assert jobs.take("a") == 5
    assert jobs.give_back([5]) == [5]
    assert jobs.take("a") is None


def test_a_server_waits_while_others_hold_jobs_that_may_come_back():
    jobs = JobQueue([0], max_retries=3)
    jobs.take("b")
    answers = []
    waiter = threading.Thread(target=lambda: answers.append(jobs.wait_for_work("a")))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive()                                 # job 0 may come back from b
    jobs.give_back([0])                                      # b was lost
    waiter.join(5)
    assert answers == [True] and jobs.take("a") == 0


def test_stop_wakes_waiting_servers_and_takes_nothing_more():
    jobs = JobQueue([0, 1], max_retries=3)
    jobs.take("b")
    jobs.take("b")
    answers = []
    waiter = threading.Thread(target=lambda: answers.append(jobs.wait_for_work("a")))
    waiter.start()
    jobs.stop()
    waiter.join(5)
    assert answers == [False]
    jobs.give_back([0])
    assert jobs.take("a") is None
