"""read_ahead keeps order, raises where the producer failed, and stops with its consumer."""

import threading
import time

import pytest

from ncii.service.read_ahead import read_ahead


def test_items_arrive_in_order_produced_on_another_thread():
    threads = set()

    def produce():
        for i in range(1000):
            threads.add(threading.current_thread().name)
            yield i

    assert list(read_ahead(produce(), depth=3)) == list(range(1000))
    assert threads == {"ncii-read-ahead"}


def test_an_error_is_raised_where_the_item_would_have_been():
    def produce():
        yield 1
        yield 2
        raise ValueError("line 3: bad hash")

    got = []
    with pytest.raises(ValueError, match="line 3"):
        for item in read_ahead(produce()):
            got.append(item)
    assert got == [1, 2]


def test_the_producer_stops_when_the_consumer_does():
    produced = []

    def produce():
        for i in range(10_000):
            produced.append(i)
            yield i

    for item in read_ahead(produce(), depth=2):
        if item == 5:
            break
    time.sleep(0.3)
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count < 20
    assert not any(t.name == "ncii-read-ahead" for t in threading.enumerate())
