"""Relative Human protocol on the fixture: hand-computed numbers in both modes, every quirk."""

import numpy as np
import pytest

from hmr_bench import PredictionError, Predictions, evaluate
from hmr_bench.fixtures import make_predictions, make_rh_fixture
from hmr_bench.protocols import ProtocolError

SKIP = ("nopred4.jpg",)


@pytest.fixture(scope="module")
def perfect(data):
    return make_predictions("rh", data("rh"), skip_images=SKIP)


def test_paper_mode_hand_computed(data, perfect):
    """Fixture walk-through (predicted depth 2 + 1.5 * layer):
    bk00001: person 0 has no valid joint, so (B4) matched people 1 and 2 are scored with the
      labels of people 0 and 1 (layer 0, adult both): their pair is "equal" with dz = 1.5: wrong.
    och_000002: teen (layer 0) - baby (layer 1): farther by 1.5 m: right; age -1 / layer -1: none.
    cp100003: 4 people, layers 0, 0, 2, 1 (the last has one valid joint, matched thanks to the
      (-2, -2)-stretched box, B5): 6 pairs, all right.
    nopred4: no predictions: its 3 annotated people (one all-invalid) are misses (ages 0, 2, 0).
    """
    r = evaluate("rh", data("rh"), perfect, "paper")
    m = r.metrics
    assert (m["n_pairs"], m["n_correct_pairs"], m["n_missed"]) == (8, 7, 3)
    assert m["pcdr@0.2/all"] == pytest.approx(7 / 8.9)
    assert m["pcdr@0.2/adult"] == pytest.approx(6 / 7.6)
    assert m["pcdr@0.2/teen"] == 1.0 and m["pcdr@0.2/baby"] == 1.0
    assert "pcdr@0.2/kid" not in m  # the kid was scored with an adult's label (B4)
    assert m["pck2d@1/7"] == pytest.approx(7 / 9)  # 8 people at 1, one at -1 (B2)
    assert m["n_pck_undefined"] == 1
    assert (m["precision"], m["recall"]) == pytest.approx((1.0, 9 / 12))
    legacy = m["rh_legacy_prf1"]  # B1: 9 predictions in place of 12 ground truths
    assert (legacy["precision"], legacy["recall"]) == pytest.approx((1.0, 6 / 9))
    assert r.persons["label_row"][:3].tolist() == [-1, 0, 1]
    assert any("B4" in note for note in r.notes)


def test_clean_mode_hand_computed(data, perfect):
    r = evaluate("rh", data("rh"), perfect, "clean")
    m = r.metrics
    assert (m["n_pairs"], m["n_correct_pairs"], m["n_missed"]) == (5, 5, 3)
    assert m["pcdr@0.2/all"] == pytest.approx(5 / 5.9)
    assert m["pcdr@0.2/adult"] == pytest.approx(4 / 4.6)
    assert m["pcdr@0.2/kid"] == pytest.approx(1 / 1.3)
    assert m["pck2d@1/7"] == 1.0  # the one-valid-joint person has a point box: unmatched
    assert (m["precision"], m["recall"]) == pytest.approx((8 / 9, 8 / 11))
    assert r.persons["label_row"][:3].tolist() == [-1, 1, 2]
    assert r.notes == ()


def test_single_quirk_flags(data, perfect):
    base = evaluate("rh", data("rh"), perfect, "paper").metrics
    fixed_b4 = evaluate("rh", data("rh"), perfect, "paper", rh_gt_index_bug=False).metrics
    assert (
        fixed_b4["pcdr@0.2/kid"] == pytest.approx(1 / 1.3)
        and base["pck2d@1/7"] == fixed_b4["pck2d@1/7"]
    )
    no_minus1 = evaluate("rh", data("rh"), perfect, "paper", rh_pck_include_minus1=False).metrics
    assert no_minus1["pck2d@1/7"] == 1.0
    no_invalid_miss = evaluate(
        "rh", data("rh"), perfect, "paper", rh_unmatchable_missed_without_preds=False
    )
    assert no_invalid_miss.metrics["n_missed"] == 2


def test_unannotated_image_b16(tmp_path):
    make_rh_fixture(tmp_path, include_unannotated_image=True)
    preds = make_predictions("rh", tmp_path)
    per_image = {
        k: {f: v[preds.rows(k)] for f, v in preds.fields.items()} for k in preds.image_keys
    }
    one = {f: v[:1] for f, v in per_image["bk00001.jpg"].items()}
    per_image["unann05.jpg"] = one
    with_extra = Predictions.from_images(per_image)
    with pytest.raises(ProtocolError, match=r"unann05\.jpg.*B16"):
        evaluate("rh", tmp_path, with_extra, "paper")
    for mode, flags in (("clean", {}), ("paper", {"rh_unannotated_image_error": False})):
        before = evaluate("rh", tmp_path, preds, mode, **flags).metrics
        after = evaluate("rh", tmp_path, with_extra, mode, **flags).metrics
        assert after["n_false_positives"] == before["n_false_positives"] + 1
        assert after["pcdr@0.2/all"] == before["pcdr@0.2/all"]


def test_conf_threshold_is_strict_and_depth_source(data, perfect):
    conf = perfect.get("conf").copy()
    conf[0] = 0.3  # not > 0.3: dropped, its person becomes a miss
    dropped = Predictions(perfect.image_keys, perfect.offsets, {**perfect.fields, "conf": conf})
    assert evaluate("rh", data("rh"), dropped, "clean").metrics["n_missed"] == 4
    no_pelvis = Predictions(
        perfect.image_keys, perfect.offsets,
        {k: v for k, v in perfect.fields.items() if k != "pelvis"},
    )  # fmt: skip
    with pytest.raises(PredictionError, match="rh_depth_source='transl'"):
        evaluate("rh", data("rh"), no_pelvis, "clean")
    ok = evaluate("rh", data("rh"), no_pelvis, "clean", rh_depth_source="transl")
    assert ok.metrics["pcdr@0.2/all"] == pytest.approx(5 / 5.9)


def test_no_predictions_and_unknown_images(data, perfect):
    empty = Predictions(
        (),
        np.zeros(1, np.int64),
        {"conf": np.zeros(0), "kp2d": np.zeros((0, 14, 2)), "transl": np.zeros((0, 3))},
    )
    m = evaluate("rh", data("rh"), empty, "paper").metrics
    assert m["n_pairs"] == 0 and m["n_matched"] == 0 and m["recall"] == 0.0
    assert m["pcdr@0.2/all"] == 0.0  # every annotated person missed
    assert np.isnan(m["pck2d@1/7"])
    bad = Predictions(
        ("nope.jpg",),
        np.array([0, 0]),
        {"conf": np.zeros(0), "kp2d": np.zeros((0, 14, 2)), "transl": np.zeros((0, 3))},
    )
    with pytest.raises(PredictionError, match=r"not rh ground-truth images, e.g. \['nope.jpg'\]"):
        evaluate("rh", data("rh"), bad, "paper")


def test_depth_differences_in_float32(data, perfect):
    """cp100003's people 0 and 1 share layer 0; person 1 placed 0.19999999 m behind person 0: a
    correct "equal" pair in float64, a wrong one in MA-HMR's float32 results."""
    transl = perfect.get("transl").copy()
    start = perfect.rows("cp100003.jpg").start
    transl[start + 1, 2] = transl[start, 2] + 0.19999999
    preds = Predictions(perfect.image_keys, perfect.offsets, {**perfect.fields, "transl": transl})

    def correct(mode, **flags):
        return evaluate("rh", data("rh"), preds, mode, **flags).metrics["n_correct_pairs"]

    assert correct("paper") == 6  # 7 of 8 without this pair
    assert correct("paper", rh_depth_float32=False) == 7
    assert correct("clean", rh_depth_source="transl") == 5  # all 5 clean pairs stay correct
