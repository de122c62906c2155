"""Resource names, lock keys and lanes (``lib/resources.py``)."""

import zlib

from qtc_connector_base.lib import resources


def test_names_are_cleaned_sorted_and_unique():
    assert resources.normalize(["sale.order:2", " sale.order:1", "", None, "a\nb"]) == (
        "None",
        "a b",
        "sale.order:1",
        "sale.order:2",
    )
    assert resources.normalize(["x" * 500]) == ("x" * resources.MAX_NAME_LENGTH,)


def test_encode_and_decode_round_trip():
    text = resources.encode(["sale.order:2", "sale.order:1", "sale.order:2"])
    assert text == "sale.order:1\nsale.order:2"
    assert resources.decode(text) == ("sale.order:1", "sale.order:2")
    assert resources.encode([]) is None
    assert resources.decode(None) == ()


def test_record_name():
    assert resources.record_name("sale.order", 42) == "sale.order:42"


def test_lock_key_is_a_stable_signed_32_bit_integer():
    key = resources.lock_key("sale.order:42")
    assert -(2**31) <= key < 2**31
    assert key == resources.lock_key("sale.order:42")
    assert key % 2**32 == zlib.crc32(b"sale.order:42")
    assert resources.lock_key("sale.order:43") != key


def test_one_lane_or_one_item_is_lane_zero():
    assert resources.assign_lanes([["a"], ["b"]], 1) == [0, 0]
    assert resources.assign_lanes([["a"]], 4) == [0]
    assert resources.assign_lanes([], 2) == []


def test_items_sharing_a_resource_stay_in_one_lane():
    sets = [["o:1", "p:1"], ["o:2"], ["o:1", "p:2"], ["p:2", "o:3"], ["o:2"]]
    lanes = resources.assign_lanes(sets, 2)
    # o:1 - p:2 - o:3 link items 0, 2 and 3; items 1 and 4 share o:2.
    assert lanes[0] == lanes[2] == lanes[3]
    assert lanes[1] == lanes[4]
    assert lanes[0] != lanes[1]


def test_groups_are_balanced_largest_first_and_deterministic():
    sets = [[f"o:{n % 10}"] for n in range(500)]
    lanes = resources.assign_lanes(sets, 2)
    assert lanes.count(0) == lanes.count(1) == 250
    assert lanes == resources.assign_lanes(sets, 2)
    # The same engagement always in the same lane, whatever the batch order.
    by_name = {sets[n][0]: lanes[n] for n in range(500)}
    reversed_lanes = resources.assign_lanes(list(reversed(sets)), 2)
    assert {
        name: reversed_lanes[n] for n, (name,) in enumerate(reversed(sets))
    } == by_name


def test_uneven_groups_go_to_the_least_loaded_lane():
    sets = [["big"]] * 6 + [["mid"]] * 4 + [["small"]] * 3
    lanes = resources.assign_lanes(sets, 2)
    assert set(lanes[:6]) == {0}
    assert set(lanes[6:]) == {1}  # 4 + 3 items beside the 6


def test_items_without_resources_are_spread():
    lanes = resources.assign_lanes([[], [], [], []], 2)
    assert sorted(lanes) == [0, 0, 1, 1]
