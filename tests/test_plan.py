from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InputError, UnknownNameError
from orchestrator.graph import find_cycle, topological_order
from orchestrator.manifest import load
from orchestrator.plan import make_plan, select, split_names

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "manifests"


@pytest.fixture(scope="module")
def calico():  # type: ignore[no-untyped-def]
    return load(ROOT / "manifest.yaml")


@pytest.fixture(scope="module")
def typed():  # type: ignore[no-untyped-def]
    return load(DATA / "valid_all_types.yaml")


def test_a_word_naming_a_repo_and_an_artifact_means_the_repo(typed) -> None:  # type: ignore[no-untyped-def]
    assert select(typed, ["core"]) == ("core", "core-lib")


def test_an_artifact_name_selects_just_that_artifact(calico) -> None:  # type: ignore[no-untyped-def]
    assert select(calico, ["calico-ipam"]) == ("calico-ipam",)


def test_dependencies_are_added_and_come_first(typed) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(typed, ["team/node"])
    assert plan.artifacts == ("core", "pylib", "team/node")
    assert [s.requested for s in plan.steps] == [False, False, True]
    assert "stage core -> docker/bin/core" in plan.steps[-1].actions


def test_everything_keeps_manifest_order_where_dependencies_allow(calico) -> None:  # type: ignore[no-untyped-def]
    assert make_plan(calico, everything=True).artifacts == tuple(calico.artifacts)


def test_names_and_all_together_are_refused(calico) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="not both"):
        select(calico, ["felix"], everything=True)


def test_nothing_selected_is_refused(calico) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="nothing to build"):
        select(calico, [])


def test_unknown_name_lists_valid_names_and_suggests_the_closest(calico) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownNameError) as caught:
        select(calico, ["calico/nod"])
    assert caught.value.suggestion == "calico/node"
    assert "felix" in caught.value.valid and caught.value.exit_code == 2


def test_split_names_accepts_commas_spaces_and_repeats() -> None:
    assert split_names("felix, calicoctl,,felix") == ("felix", "calicoctl")


def test_cycle_is_named_in_order() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ("a", "b", "c")
    assert find_cycle({"a": ["b"], "b": []}) is None


def test_topological_order_survives_a_deep_chain() -> None:
    edges = {f"n{i}": [f"n{i + 1}"] if i < 5000 else [] for i in range(5001)}
    order = topological_order(edges, edges)
    assert order[0] == "n5000" and order[-1] == "n0"
