# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""storage_snapshot's retention: ages, which snapshots it prunes (pure), and prune runs on the real
file driver (raw and qcow2): idempotence, check mode, diff, what is never pruned, refusals."""

from __future__ import annotations

import datetime
import shutil

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.errors import InvalidParameter, NotFound
from ansible_collections.blockstore.storage.plugins.module_utils.objects import Snapshot
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore
from ansible_collections.blockstore.storage.plugins.module_utils.snapshots import (
    Retention,
    SnapshotResource,
    check_retention,
    sort_out,
)
from ansible_collections.blockstore.storage.plugins.module_utils.units import parse_age
from ansible_collections.blockstore.storage.tests.unit.plugins.module_utils.test_resources import Lab

AT = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.timezone.utc)
DAY = 86400


# ages ----------------------------------------------------------------------
@pytest.mark.parametrize(("text", "seconds"), [
    ("7d", 7 * DAY), ("36h", 36 * 3600), ("1w3d", 10 * DAY), ("90m", 5400), ("1s", 1), ("1d12h", 36 * 3600),
])
def test_ages_in_seconds(text, seconds):
    assert parse_age(text, "retention.max_age") == seconds


@pytest.mark.parametrize("value", ["", "7", "d", "7 d", "7D", "-1d", "1.5d", "0d", "0s0m", "7days", 7, None,
                                   True, "1234567890d"])
def test_bad_ages_are_refused_naming_the_option(value):
    with pytest.raises(InvalidParameter) as error:
        parse_age(value, "retention.max_age")
    assert error.value.option == "retention.max_age" and str(error.value).startswith("retention.max_age: ")


@pytest.mark.parametrize(("value", "option"), [
    ("nightly", "retention"),
    ({"keep": 3}, "retention.prefix"),
    ({"prefix": "", "keep": 3}, "retention.prefix"),
    ({"prefix": "  ", "keep": 3}, "retention.prefix"),
    ({"prefix": 5, "keep": 3}, "retention.prefix"),
    ({"prefix": "n-"}, "retention"),
    ({"prefix": "n-", "keep": 0}, "retention.keep"),
    ({"prefix": "n-", "keep": -2}, "retention.keep"),
    ({"prefix": "n-", "keep": True}, "retention.keep"),
    ({"prefix": "n-", "keep": "3"}, "retention.keep"),
    ({"prefix": "n-", "max_age": "a week"}, "retention.max_age"),
    ({"prefix": "n-", "keep": 3, "expire": "7d"}, "retention"),
])
def test_bad_retention_is_refused_naming_the_option(value, option):
    with pytest.raises(InvalidParameter) as error:
        check_retention(value)
    assert error.value.option == option


def test_good_retention_is_read():
    assert check_retention(None) is None
    assert check_retention({"prefix": "n-", "keep": 2, "max_age": "1w"}) == Retention("n-", 2, 7 * DAY, "1w")
    assert check_retention({"prefix": "n-", "keep": None, "max_age": "2d"}) == Retention("n-", None, 2 * DAY, "2d")


# which snapshots (pure) -----------------------------------------------------
def snap(name: str, days_old: float, status: str = "available") -> Snapshot:
    created = (AT - datetime.timedelta(days=days_old)).isoformat(timespec="seconds")
    return Snapshot(id=f"id-{name}", name=name, backend="lab", volume_id="v", volume_size=1, status=status,
                    created_at=created)


def names(pairs) -> list[str]:
    return [s.name for s, _why in pairs]


def nightly(*ages: float) -> list[Snapshot]:
    return [snap(f"n-{i}", age) for i, age in enumerate(ages)]


def none(_snapshot):
    return []


def test_keep_prunes_all_but_the_newest_and_only_matching_names():
    snapshots = [*nightly(0, 1, 2, 3, 4), snap("by-hand", 10), snap("n", 10)]
    prune, kept = sort_out(snapshots, Retention("n-", keep=2), AT, none)
    assert names(prune) == ["n-2", "n-3", "n-4"]
    assert [why for _s, why in prune] == ["not one of the newest 2"] * 3
    assert names(kept) == ["n-0", "n-1"]
    # positive control: a hand-made snapshot is pruned once the prefix matches its name
    snapshots.append(snap("by-other", 11))
    assert names(sort_out(snapshots, Retention("by-", keep=1), AT, none)[0]) == ["by-other"]


def test_max_age_prunes_the_older_ones():
    prune, kept = sort_out(nightly(0, 6.9, 7.1, 30), Retention("n-", max_age=7 * DAY, max_age_text="7d"), AT, none)
    assert names(prune) == ["n-2", "n-3"] and [w for _s, w in prune] == ["older than 7d"] * 2
    assert [w for _s, w in kept] == ["younger than 7d"] * 2


def test_with_both_rules_a_snapshot_goes_only_when_neither_keeps_it():
    both = Retention("n-", keep=2, max_age=7 * DAY, max_age_text="7d")
    # keep is a floor: the newest 2 stay though older than 7 days
    prune, kept = sort_out(nightly(20, 21, 22), both, AT, none)
    assert names(kept) == ["n-0", "n-1"] and names(prune) == ["n-2"]
    assert [w for _s, w in prune] == ["not one of the newest 2 and older than 7d"]
    # max_age keeps the young beyond the newest 2
    prune, kept = sort_out(nightly(0, 1, 2, 8), both, AT, none)
    assert names(kept) == ["n-0", "n-1", "n-2"] and names(prune) == ["n-3"]


def test_never_pruned_own_unavailable_unreadable_or_shared_and_each_has_a_positive_control():
    rule = Retention("n-", keep=2)  # the task's own snapshot is one of the 2
    snapshots = nightly(5, 1, 2, 3, 4)
    snapshots[2].status = "error"
    snapshots[3].created_at = "yesterday"

    def shared(s):
        return ["'clone'"] if s.name == "n-4" else []

    prune, kept = sort_out(snapshots, rule, AT, shared, own_id="id-n-0")
    assert names(prune) == []
    reasons = {s.name: why for s, why in kept}
    assert reasons == {
        "n-0": "the snapshot this task takes",  # the oldest, but the task's own and sorted first
        "n-1": "one of the newest 2",
        "n-2": "status error, not available",
        "n-3": "creation time 'yesterday' cannot be read",
        "n-4": "volume(s) 'clone' made from it share its data (delete or flatten them first)",
    }
    # positive controls: the same snapshots are pruned once the reason is gone
    snapshots[2].status = "available"
    snapshots[3].created_at = snap("x", 3).created_at
    prune, _kept = sort_out(snapshots, Retention("n-", keep=1), AT, none, own_id="id-n-0")
    assert names(prune) == ["n-1", "n-2", "n-3", "n-4"]


def test_unavailable_snapshots_do_not_count_among_the_newest():
    snapshots = nightly(0, 1, 2)
    snapshots[0].status = "creating"
    prune, kept = sort_out(snapshots, Retention("n-", keep=1), AT, none)
    assert names(kept) == ["n-0", "n-1"] and names(prune) == ["n-2"]


def test_z_times_and_naive_times_are_utc():
    snapshots = nightly(0, 0)
    snapshots[0].created_at = "2026-11-01T00:00:00Z"
    snapshots[1].created_at = "2026-11-01T00:00:00"
    prune, _kept = sort_out(snapshots, Retention("n-", max_age=DAY, max_age_text="1d"), AT, none)
    assert sorted(names(prune)) == ["n-0", "n-1"]


# on the real file driver ------------------------------------------------------
@pytest.fixture(params=["raw", "qcow2"])
def lab(request, tmp_path) -> Lab:
    if not shutil.which("qemu-img"):
        pytest.skip("qemu-img is not installed (Debian package qemu-utils)")
    made = Lab(str(tmp_path / "lab"), request.param, MemoryStore())
    made.volume(name="db", size=1)
    return made


def age(lab: Lab, name: str, days: float) -> None:
    """Make a snapshot `days` old, as if it had been taken then."""
    record = dict(lab.record("snapshot", name))
    then = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days)
    record["created_at"] = then.isoformat(timespec="seconds")
    lab.store.apply(upserts=[record])


def nightly_run(lab: Lab, name: str | None, check_mode: bool = False, **retention) -> dict:
    params = {"volume": "db", "retention": {"prefix": "nightly-", **retention}}
    if name is not None:
        params["name"] = name
    return lab.run(SnapshotResource, check_mode=check_mode, **params)


def snapshot_names(lab: Lab) -> list[str]:
    return sorted(r["name"] for r in lab.store.find("lab", "snapshot"))


def test_nightly_keeps_the_newest_then_changes_nothing(lab):
    for day in (1, 2, 3):
        lab.snapshot(volume="db", name=f"nightly-{day}")
        age(lab, f"nightly-{day}", 10 - day)
    lab.snapshot(volume="db", name="by-hand")
    age(lab, "by-hand", 30)
    files_before = lab.files()
    before = lab.snapshot_of_state()

    planned = nightly_run(lab, "nightly-4", check_mode=True, keep=2)
    assert lab.snapshot_of_state() == before  # check mode changed nothing
    assert planned["changed"] and [p["name"] for p in planned["pruned"]] == ["nightly-2", "nightly-1"]
    assert planned["actions"][0] == "create snapshot 'nightly-4' of volume 'db'"
    assert planned["actions"][1].startswith("prune snapshot 'nightly-2' (")
    assert [(d.get("before_header"), d["after"]) for d in planned["diff"][1:]] == [
        ("snapshot nightly-2", {}), ("snapshot nightly-1", {})]
    assert planned["diff"][0]["before"] == {} and planned["diff"][0]["after"]["name"] == "nightly-4"

    done = nightly_run(lab, "nightly-4", keep=2)
    assert done["changed"] and done["pruned"] == planned["pruned"]
    assert [(k["name"], k["reason"]) for k in done["kept"]] == [
        ("nightly-4", "the snapshot this task takes"), ("nightly-3", "one of the newest 2")]
    assert snapshot_names(lab) == ["by-hand", "nightly-3", "nightly-4"]
    gone = [f"snapshot-{p['id']}" for p in done["pruned"]]
    assert gone[0] in files_before and not set(gone) & set(lab.files())
    assert done["snapshot"]["name"] == "nightly-4" and done["snapshot"]["status"] == "available"

    after = lab.snapshot_of_state()
    again = nightly_run(lab, "nightly-4", keep=2)
    assert not again["changed"] and again["actions"] == [] and again["pruned"] == []
    assert lab.snapshot_of_state() == after


def test_prune_only_by_age(lab):
    for day in (1, 2):
        lab.snapshot(volume="db", name=f"nightly-{day}")
    age(lab, "nightly-1", 8)
    result = nightly_run(lab, None, max_age="7d")
    assert result["changed"] and [p["name"] for p in result["pruned"]] == ["nightly-1"]
    assert result["pruned"][0]["reason"] == "older than 7d" and result["snapshot"] is None
    assert snapshot_names(lab) == ["nightly-2"]
    assert not nightly_run(lab, None, max_age="7d")["changed"]


def test_a_snapshot_a_volume_shares_data_with_is_kept_on_qcow2_not_on_raw(lab):
    lab.snapshot(volume="db", name="nightly-1")
    lab.volume(name="copy", source={"snapshot": "nightly-1"})
    age(lab, "nightly-1", 3)
    result = nightly_run(lab, "nightly-2", keep=1)
    if lab.format == "qcow2":
        assert result["pruned"] == [] and snapshot_names(lab) == ["nightly-1", "nightly-2"]
        assert result["kept"][1]["reason"] == ("volume(s) 'copy' made from it share its data (delete or flatten "
                                               "them first)")
        # positive control: once the volume is gone, the snapshot is pruned
        lab.volume(name="copy", state="absent")
        result = nightly_run(lab, "nightly-2", keep=1)
    assert [p["name"] for p in result["pruned"]] == ["nightly-1"]
    assert snapshot_names(lab) == ["nightly-2"]


@pytest.mark.parametrize(("params", "option"), [
    ({"volume": "db", "name": "tonight", "retention": {"prefix": "nightly-", "keep": 2}}, "retention.prefix"),
    ({"volume": "db", "name": "nightly-9", "retention": {"prefix": "nightly-", "keep": 0}}, "retention.keep"),
    ({"volume": "db", "name": "nightly-9", "retention": {"prefix": "nightly-", "max_age": "7"}},
     "retention.max_age"),
    ({"name": "nightly-9", "retention": {"prefix": "nightly-", "keep": 2}}, "volume"),
    ({"volume": "db", "name": "nightly-1", "state": "absent", "retention": {"prefix": "nightly-", "keep": 1}},
     "retention"),
])
def test_bad_values_are_refused_and_change_nothing(lab, params, option):
    for day in (1, 2, 3):
        lab.snapshot(volume="db", name=f"nightly-{day}")
    before = lab.snapshot_of_state()
    with pytest.raises(InvalidParameter) as error:
        lab.run(SnapshotResource, **params)
    assert error.value.option == option
    assert lab.snapshot_of_state() == before


def test_an_unknown_volume_is_named(lab):
    with pytest.raises(NotFound) as error:
        lab.run(SnapshotResource, volume="nope", retention={"prefix": "nightly-", "keep": 1})
    assert error.value.option == "volume"


def test_the_task_snapshot_named_by_id_must_start_with_the_prefix_too(lab):
    by_hand = lab.snapshot(volume="db", name="by-hand")["snapshot"]
    lab.snapshot(volume="db", name="nightly-1")
    before = lab.snapshot_of_state()
    with pytest.raises(InvalidParameter) as error:
        lab.run(SnapshotResource, volume="db", id=by_hand["id"], retention={"prefix": "nightly-", "keep": 1})
    assert error.value.option == "retention.prefix" and "'by-hand' does not start with 'nightly-'" in str(error.value)
    assert lab.snapshot_of_state() == before
    # positive control: renamed into the prefix by the same task, it is the task's snapshot and the newest
    done = lab.run(SnapshotResource, volume="db", id=by_hand["id"], name="nightly-2",
                   retention={"prefix": "nightly-", "keep": 1})
    assert [p["name"] for p in done["pruned"]] == ["nightly-1"]
    assert [(k["name"], k["reason"]) for k in done["kept"]] == [("nightly-2", "the snapshot this task takes")]
    assert snapshot_names(lab) == ["nightly-2"]


def test_a_group_snapshots_member_is_never_pruned_alone():
    # A group snapshot whose name starts with the prefix: its member of this volume is kept (pruning it alone
    # would leave a group without it, which the group's next run refuses); the group goes with group + absent.
    snapshots = [snap("n-0", 0), snap("n-g/db", 3), snap("n-2", 5)]
    snapshots[1].group = "n-g"
    prune, kept = sort_out(snapshots, Retention("n-", keep=1), AT, none)
    assert names(prune) == ["n-2"]
    assert dict((s.name, why) for s, why in kept)["n-g/db"] == (
        "a member of group snapshot 'n-g' (deleted with its group: group and state: absent)")
    # positive control: the same snapshot outside a group is pruned
    snapshots[1].group = ""
    assert names(sort_out(snapshots, Retention("n-", keep=1), AT, none)[0]) == ["n-g/db", "n-2"]
