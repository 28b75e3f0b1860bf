"""Dates of archival lines and relative time phrases made absolute (`dates.py`)."""

from __future__ import annotations

from datetime import date

import pytest

from agentmem_server.dates import date_prefix, find_date, line_date, resolve_relative

MON_8_MAY = date(2023, 5, 8)


@pytest.mark.parametrize(
    "line",
    [
        "[8 May 2023] Ana: hi",
        "[1:56 pm on 8 May, 2023] Ana: hi",
        "[Mon, May 8, 2023 7:02 PM] Ana: hi",
        "[8th of May 2023] Ana: hi",
        "2023-05-08 14:02 Ana: hi",
        "Mon, May 8, 2023 7:02 PM Ana: hi",
    ],
)
def test_a_line_is_dated_by_its_prefix_in_any_common_export_style(line: str) -> None:
    assert line_date(line) == MON_8_MAY


@pytest.mark.parametrize(
    "line",
    ["Ana: I was born on 3 March 1990", "[Ana] hi", "no date here", "[31 February 2023] x"],
)
def test_a_date_the_line_talks_about_is_not_when_it_was_said(line: str) -> None:
    assert line_date(line) is None


def test_the_prefix_is_split_off_only_when_it_holds_a_date() -> None:
    assert date_prefix("[1:56 pm on 8 May, 2023] Ana: hi") == (
        "[1:56 pm on 8 May, 2023]",
        "Ana: hi",
    )
    assert date_prefix("[note] Ana: hi") == ("", "[note] Ana: hi")
    assert find_date("see you on May 8, 2023 or 2023-06-01") == MON_8_MAY


@pytest.mark.parametrize(
    ("said", "meant"),
    [
        ("I went yesterday", "I went yesterday (7 May 2023)"),
        ("the day before yesterday we met", "the day before yesterday (6 May 2023) we met"),
        ("Last night was loud", "Last night (7 May 2023) was loud"),
        ("this morning I ran", "this morning (8 May 2023) I ran"),
        ("two days ago", "two days ago (6 May 2023)"),
        ("a couple of weeks ago", "a couple of weeks ago (24 April 2023)"),
        ("3 weeks ago", "3 weeks ago (17 April 2023)"),
        ("on Saturday we hiked", "on Saturday (6 May 2023) we hiked"),
        ("last Monday", "last Monday (1 May 2023)"),  # said on a Monday: the one before
        ("next Friday", "next Friday (12 May 2023)"),
        ("last weekend", "last weekend (the weekend before 8 May 2023)"),
        ("last week", "last week (the week before 8 May 2023)"),
        ("last month", "last month (April 2023)"),
        ("two months ago", "two months ago (March 2023)"),
        ("last year", "last year (2022)"),
        ("nothing relative", "nothing relative"),
    ],
)
def test_relative_phrases_are_resolved_against_the_lines_date(said: str, meant: str) -> None:
    assert resolve_relative(said, MON_8_MAY) == meant


def test_resolving_twice_changes_nothing() -> None:
    once = resolve_relative("yesterday and last month", MON_8_MAY)
    assert resolve_relative(once, MON_8_MAY) == once


def test_january_looks_back_into_the_previous_year() -> None:
    assert resolve_relative("last month", date(2024, 1, 3)) == "last month (December 2023)"
