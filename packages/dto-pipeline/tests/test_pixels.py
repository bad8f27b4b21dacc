"""The pixel ablation (`apps/dto demo --pixels`): every evaluated person is matched to its true
person, so the teacher row's depths relate to the truth exactly as the simulated teacher says."""

from __future__ import annotations

import numpy as np

from dto_pipeline.pixels import METHODS, pixel_ablation


def test_pixel_ablation_matches_people_to_their_truth(tmp_path):
    result = pixel_ablation(tmp_path, 2, seed=2, image_size=(144, 192))
    crowds, methods = result["crowds"], result["methods"]
    n = int(crowds.offsets[-1])
    assert n >= 4 and result["photos"] == 2 and result["reached_dto"] == 2
    assert set(methods) == {"teacher"} | {f"{v} +D" + ("+X" if x else "") for v, x in METHODS}
    for method in methods.values():
        assert method["depth"].shape == method["height"].shape == (n,)
        assert np.all(method["depth"] > 0) and np.all(method["height"] > 0.4)
    # the simulated teacher sees person i at (h_hat / h) times the depth the teacher's camera
    # needs (the target), with the height h_hat: holds only if rows meet their own truth
    teacher = methods["teacher"]
    np.testing.assert_allclose(teacher["height"], crowds.teacher_height, atol=2e-3)
    ratio = teacher["depth"] / crowds.target_depth
    np.testing.assert_allclose(ratio, crowds.teacher_height / crowds.height, rtol=0.03)
    # DTO re-scales translations only: each person's depth moves by its scale factor s, and its
    # height by the same factor
    paper = methods["paper +D"]
    np.testing.assert_allclose(
        paper["height"] / teacher["height"], paper["depth"] / teacher["depth"], rtol=2e-3
    )
