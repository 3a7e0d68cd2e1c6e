import pytest

from ncii import InvalidSignal, Signal, UnknownSignalType, get_signal_type
from ncii.signals import PDQ_MATCH_THRESHOLD, SIGNAL_TYPES


@pytest.mark.parametrize("signal_type", SIGNAL_TYPES.values(), ids=lambda t: t.name)
def test_every_type_parses_its_examples_and_formats_them_canonically(signal_type):
    for example in signal_type.examples:
        assert signal_type.parse(example.upper()) == example.lower()
        assert signal_type.distance(example, example) == 0
        assert len(example) == signal_type.hex_length


@pytest.mark.parametrize("signal_type", SIGNAL_TYPES.values(), ids=lambda t: t.name)
@pytest.mark.parametrize("bad", ["", "xyz", "0" * 3, "g" * 64, "0" * 65, "0" * 63])
def test_malformed_values_raise_one_line_error_naming_the_type(signal_type, bad):
    if len(bad) == signal_type.hex_length and bad.isalnum() and set(bad) <= set("0123456789abcdef"):
        pytest.skip("value happens to be valid for this type")
    with pytest.raises(InvalidSignal) as info:
        signal_type.parse(bad)
    message = str(info.value)
    assert signal_type.name in message and "\n" not in message


def test_non_string_value_is_refused():
    with pytest.raises(InvalidSignal, match="expected a hex string"):
        get_signal_type("pdq").parse(123)  # type: ignore[arg-type]


def test_pdq_distance_and_threshold_edges():
    pdq = get_signal_type("pdq")
    base = int("f" * 64, 16)
    at_threshold = f"{base ^ ((1 << PDQ_MATCH_THRESHOLD) - 1):064x}"
    past_threshold = f"{base ^ ((1 << (PDQ_MATCH_THRESHOLD + 1)) - 1):064x}"
    assert pdq.distance("f" * 64, at_threshold) == 31
    assert pdq.matches("f" * 64, at_threshold)
    assert not pdq.matches("f" * 64, past_threshold)
    assert pdq.threshold == 31 and pdq.bits == 256


def test_exact_types_match_only_identical_values():
    md5 = get_signal_type("md5")
    a = "d41d8cd98f00b204e9800998ecf8427e"
    b = "d41d8cd98f00b204e9800998ecf8427f"
    assert md5.matches(a, a.upper())
    assert not md5.matches(a, b)


def test_signal_parse_and_quality_flags():
    signal = Signal.parse("PDQ:" + "ab" * 32, quality=49)
    assert signal.type == "pdq" and signal.value == "ab" * 32
    assert signal.low_quality
    assert not Signal.of("pdq", "ab" * 32, quality=50).low_quality
    assert str(signal) == "pdq:" + "ab" * 32
    with pytest.raises(InvalidSignal, match="quality"):
        Signal.of("pdq", "ab" * 32, quality=101)
    with pytest.raises(InvalidSignal, match="TYPE:VALUE"):
        Signal.parse("ab" * 32)
    with pytest.raises(UnknownSignalType, match="known: pdq"):
        Signal.parse("tmk:00")
