"""One reading of a typed date or time, for the CLI and the HTTP API alike."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ledger.times import TimeTextError, end_of, start_of

JST = timezone(timedelta(hours=9))


def test_a_date_is_the_whole_day_in_utc():
    assert end_of("2019-09-01") == datetime(2019, 9, 1, 23, 59, 59, 999999, tzinfo=timezone.utc)
    assert start_of("2019-09-01") == datetime(2019, 9, 1, tzinfo=timezone.utc)


def test_a_time_with_zone_is_that_instant_from_either_side():
    for read in (end_of, start_of):
        assert read("2019-09-01T12:00:00+09:00") == datetime(2019, 9, 1, 12, tzinfo=JST)
        assert read("2019-09-01T03:00:00Z") == datetime(2019, 9, 1, 3, tzinfo=timezone.utc)


@pytest.mark.parametrize(("text", "message"), [
    ("yesterday", "'yesterday' is not a date (2019-10-01) or a time with zone (2019-10-01T12:00:00+09:00)"),
    ("2019-02-30", "'2019-02-30' is not a date (2019-10-01) or a time with zone (2019-10-01T12:00:00+09:00)"),
    ("2019-10-01T12:00", "'2019-10-01T12:00' has no time zone; add one, e.g. 2019-10-01T12:00+00:00 or "
                         "2019-10-01T12:00Z"),
])
def test_text_that_is_not_a_time_is_refused_by_name(text, message):
    for read in (end_of, start_of):
        with pytest.raises(TimeTextError) as refused:
            read(text)
        assert str(refused.value) == message
        assert isinstance(refused.value, ValueError)
