"""Forward behaviour of the tiny config: token paths, equivalences, camera, gradients."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mahmr_model import DenoisingQueries, ImageBatch, MAHMROutput, SMPLBody, tiny
from mahmr_model.geometry import project, translation_from_camera


def _batch(seed: int = 0) -> ImageBatch:
    """Two images of different sizes on a 224 x 224 canvas (own grids 6 x 8 and 8 x 4 cells)."""
    generator = torch.Generator().manual_seed(seed)
    images = [
        torch.rand(3, 149, 224, generator=generator),
        torch.rand(3, 224, 89, generator=generator),
    ]
    return ImageBatch.from_tensors(images, canvas=224)


def _mixed_scale_map(batch: ImageBatch) -> torch.Tensor:
    """Probabilities giving all three levels: small people, large people, background."""
    h1, w1 = (s // 28 for s in batch.pixels.shape[2:])
    probs = torch.zeros(len(batch.image_sizes), h1, w1, 2)
    probs[0, 0:2, 0:2] = torch.tensor([0.9, 0.2])  # a small person: 4 cells -> 16 tokens
    probs[0, 2:4, 4:6] = torch.tensor([0.9, 0.8])  # a large person: 4 cells kept at 28 px
    probs[0, 4, 6] = torch.tensor([0.9, 0.1])  # one small cell; its 3 siblings stay at 28 px
    probs[1, 6:8, 0:4] = torch.tensor([0.9, 0.7])
    probs[1, 0, 0] = torch.tensor([0.9, 0.3])
    return probs


def _assert_outputs_close(a: MAHMROutput, b: MAHMROutput, atol: float) -> None:
    for x, y in zip(a.layers, b.layers, strict=True):
        for name in ("boxes", "conf_logits", "pose6d", "betas", "transl", "joints", "joints_2d"):
            u, v = getattr(x, name), getattr(y, name)
            assert (u is None) == (v is None), name
            assert u is None or torch.allclose(u, v, atol=atol, rtol=0), name
    assert torch.allclose(a.fov, b.fov, atol=atol, rtol=0)


def test_token_levels_follow_the_scale_map(make_tiny: Callable) -> None:
    model, batch = make_tiny(), _batch()
    with torch.no_grad():
        out = model(batch, scale_map=_mixed_scale_map(batch), body_layers="none")
    tokens = out.tokens

    def per_level(b: int) -> list[int]:
        return [int(((tokens.batch == b) & (tokens.level == lvl)).sum()) for lvl in range(3)]

    # image 0 (6 x 8 cells = 12 groups): 5 small cells -> 20 tokens; 4 + 3 kept 28 px cells;
    # 12 - 3 groups with a person = 9 background groups
    assert per_level(0) == [20, 7, 9]
    # image 1 (8 x 4 cells = 8 groups): 1 small cell; 8 + 3 kept; 8 - 3 background groups
    assert per_level(1) == [4, 11, 5]
    assert tokens.lengths(2).tolist() == [36, 20]
    lvl2 = tokens.subset(tokens.level == 2)
    assert int(lvl2.row.max()) < 4 and int(lvl2.col.max()) < 4  # 56 px grid of a 224 canvas
    # scale-map logits exist only for each image's own cells
    assert out.scale_inside.sum(dim=(1, 2)).tolist() == [48, 32]
    assert torch.all(out.scale_logits[~out.scale_inside] == 0)


def test_packed_and_padded_paths_agree(make_tiny: Callable) -> None:
    model, batch = make_tiny(seed=1), _batch()
    scale_map = _mixed_scale_map(batch)
    with torch.no_grad():
        padded = model(batch, scale_map=scale_map)
        packed = model(batch, scale_map=scale_map, packed=True)
        predicted_padded = model(batch)  # the model's own (random) scale map
        predicted_packed = model(batch, packed=True)
    _assert_outputs_close(padded, packed, atol=1e-5)
    _assert_outputs_close(predicted_padded, predicted_packed, atol=1e-5)
    assert not torch.allclose(padded.final.transl, predicted_padded.final.transl)


def test_batching_does_not_change_an_image(make_tiny: Callable) -> None:
    """No attention across images: an image alone gives what it gives inside a batch."""
    model, batch = make_tiny(seed=2), _batch()
    scale_map = _mixed_scale_map(batch)
    single = ImageBatch(batch.pixels[1:, :, :, :], batch.image_sizes[1:])
    with torch.no_grad():
        both = model(batch, scale_map=scale_map)
        alone = model(single, scale_map=scale_map[1:])
    assert torch.allclose(both.final.joints[1], alone.final.joints[0], atol=1e-5)


def test_deterministic_for_a_fixed_seed(make_tiny: Callable) -> None:
    batch = _batch()
    with torch.no_grad():
        a = make_tiny(seed=7)(batch)
        b = make_tiny(seed=7)(batch)
        c = make_tiny(seed=8)(batch)
    _assert_outputs_close(a, b, atol=0.0)
    assert not torch.equal(a.final.conf_logits, c.final.conf_logits)


def test_full_resolution_path(make_tiny: Callable) -> None:
    model, batch = make_tiny(), _batch()
    with torch.no_grad():
        out = model(batch, full_resolution=True)
    assert out.scale_logits is None
    assert out.tokens.lengths(2).tolist() == [4 * 48, 4 * 32]
    assert torch.all(out.tokens.level == 0)
    assert out.final.joints.shape == (2, 8, 45, 3)


def test_learned_queries_ignore_denoising_queries(make_tiny: Callable) -> None:
    """Matching queries cannot attend to denoising queries, so their outputs are unchanged."""
    model, batch = make_tiny(seed=3), _batch()
    q, p, c = model.config.num_queries, 4, model.config.hidden_dim
    generator = torch.Generator().manual_seed(0)
    blocked = torch.zeros(p + q, p + q, dtype=torch.bool)
    blocked[p:, :p] = True  # learned queries do not see the denoising group
    dn = DenoisingQueries(
        torch.randn(2, p, c, generator=generator),
        torch.randn(2, p, 4, generator=generator),
        blocked,
    )
    with torch.no_grad():
        plain = model(batch)
        with_dn = model(batch, denoising=dn)
    assert with_dn.num_denoising == p
    assert with_dn.final.boxes.shape == (2, p + q, 4)
    assert torch.allclose(with_dn.final.joints[:, p:], plain.final.joints, atol=1e-5)
    assert torch.allclose(with_dn.final.boxes[:, p:], plain.final.boxes, atol=1e-6)


def test_camera_outputs_and_known_intrinsics(make_tiny: Callable) -> None:
    model, batch = make_tiny(seed=4), _batch()
    canvas = model.config.input_size
    with torch.no_grad():
        out = model(batch)
        k = torch.tensor([[400.0, 0.0, 100.0], [0.0, 410.0, 80.0], [0.0, 0.0, 1.0]]).repeat(2, 1, 1)
        known = model(batch, intrinsics=k)
    h = batch.image_sizes[:, 0].float()
    f = out.intrinsics[:, 1, 1]
    assert torch.allclose(f, h / (2 * torch.tan(out.fov_raw.clamp(min=0.08) / 2)))
    assert torch.allclose(out.intrinsics[:, 0, 2], batch.image_sizes[:, 1].float() / 2)
    final = out.final
    assert torch.allclose(
        final.transl, translation_from_camera(final.cam, out.intrinsics, batch.image_sizes, canvas)
    )
    assert torch.allclose(final.depths[..., 1], final.transl[..., 2] / f[:, None])
    assert torch.allclose(final.joints_2d, project(final.joints, out.intrinsics))
    assert torch.equal(known.intrinsics, k)
    s = 2 * torch.sigmoid(known.final.cam[..., 2]) + 1e-6
    assert torch.allclose(known.final.transl[..., 2], 2 * 400.0 / (s * canvas))
    # pose, shape, boxes and confidences do not depend on the camera
    assert torch.equal(known.final.pose6d, final.pose6d)


def test_models_without_fov_head_use_the_fixed_canvas_camera(
    make_tiny: Callable, adult_body: SMPLBody
) -> None:
    model = make_tiny(config=tiny(variant="tiny", fov_head=False, num_betas=10)).set_body(
        adult_body
    )
    batch = _batch()
    with torch.no_grad():
        out = model(batch)
    assert out.fov_raw is None
    assert torch.allclose(out.intrinsics[:, 0, 0], torch.full((2,), model.config.fixed_focal))


def test_body_layers_and_missing_body(make_tiny: Callable, adult_body: SMPLBody) -> None:
    model, batch = make_tiny(), _batch()
    with torch.no_grad():
        every = model(batch, body_layers="all", return_vertices=True)
        none = model(batch, body_layers="none")
    assert all(layer.joints is not None and layer.vertices is not None for layer in every.layers)
    assert all(layer.joints is None for layer in none.layers)
    assert every.final.vertices.shape == (2, 8, 6890, 3)
    with pytest.raises(ValueError, match="body model has 10 betas, the tiny model 11"):
        model.set_body(adult_body)
    model.set_body(None)
    with pytest.raises(RuntimeError, match="no body model"):
        model(batch)


def test_merge_early_exit_flag(make_tiny: Callable) -> None:
    batch = _batch()
    probs = torch.full((2, 8, 8, 2), 0.9)
    probs[:, 0, 0, 1] = 0.1  # every cell holds a person; one is small; no background group
    with torch.no_grad():
        fixed = make_tiny()(batch, scale_map=probs, body_layers="none")
        official = make_tiny(config=tiny(merge_early_exit=True))(
            batch, scale_map=probs, body_layers="none"
        )
    assert fixed.tokens.lengths(2).tolist() == [4 + 47, 4 + 31]
    assert official.tokens.lengths(2).tolist() == [4 + 48, 4 + 32]


def test_box_refinement_gradients_reach_one_previous_layer(make_tiny: Callable) -> None:
    model = make_tiny(config=tiny(dec_layers=3)).train()
    out = model(_batch(), body_layers="none")
    out.layers[2].boxes.sum().backward()
    grads = [head.layers[-1].weight.grad for head in model.decoder.box_heads]
    assert grads[0] is None or torch.all(grads[0] == 0)
    assert grads[1].abs().sum() > 0 and grads[2].abs().sum() > 0


def test_bf16_autocast_on_cpu(make_tiny: Callable) -> None:
    model, batch = make_tiny(seed=5), _batch()
    with torch.no_grad():
        reference = model(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(batch)
    assert out.final.joints.dtype == torch.float32 and out.final.rotmats.dtype == torch.float32
    assert torch.isfinite(out.final.joints).all()
    assert torch.allclose(out.final.transl, reference.final.transl, atol=0.05, rtol=0.05)


def test_training_steps_reduce_a_simple_loss(make_tiny: Callable) -> None:
    """Smoke test of gradients through SAT tokens, decoder, heads and SMPL (not a result)."""
    model = make_tiny(seed=0).train()
    batch = ImageBatch.from_tensors(
        [torch.rand(3, 224, 168, generator=torch.Generator().manual_seed(1))], 224
    )
    target_2d = torch.tensor([[60.0, 50.0]]) + 40 * torch.rand(
        45, 2, generator=torch.Generator().manual_seed(2)
    )
    target_box = torch.tensor([0.3, 0.35, 0.2, 0.4])
    target_map = torch.zeros(1, 8, 6)  # 224 x 168 canvas
    target_map[0, 1:5, 1:4] = 1.0
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)

    def loss_fn(out: MAHMROutput) -> torch.Tensor:
        final = out.final
        j2d = (final.joints_2d[0, 0] - target_2d).abs().mean() / 224
        box = (final.boxes[0, 0] - target_box).abs().sum()
        conf = F.binary_cross_entropy_with_logits(final.conf_logits[0], torch.eye(1, 8)[0])
        presence = F.binary_cross_entropy_with_logits(out.scale_logits[..., 0], target_map)
        fov = (out.fov_raw - 0.9).pow(2).sum()
        return j2d + box + conf + presence + fov

    losses = []
    for _ in range(12):
        optimizer.zero_grad()
        loss = loss_fn(model(batch))
        loss.backward()
        losses.append(float(loss.detach()))
        if len(losses) == 1:
            enc = model.encoder
            reached = {
                "blocks": enc.blocks[-1].attn.qkv.weight.grad,
                "map_blocks": enc.map_blocks[0].mlp.fc1.weight.grad,
                "scale_head": enc.scale_head.layers[0].weight.grad,
                "pos_embed": enc.pos_embed.grad,
                "camera_token": enc.camera_token.grad,
                "fov_head": model.fov_head.layers[0].weight.grad,
                "decoder": model.decoder.layers[0].ca_kpos_proj.weight.grad,
                "pose_heads": model.pose_heads[-1].layers[0].weight.grad,
                "level_embed": model.level_embed.grad,
            }
            assert {k for k, g in reached.items() if g is None or not g.abs().sum() > 0} == set()
        optimizer.step()
    assert losses[-1] < 0.7 * losses[0], losses


def test_gradient_checkpointing_gives_the_same_gradients(make_tiny: Callable) -> None:
    grads = []
    for checkpointing in (False, True):
        model = make_tiny(seed=9).train()
        model.set_grad_checkpointing(checkpointing)
        model(_batch(), body_layers="none").final.transl.sum().backward()
        grads.append(model.encoder.blocks[1].mlp.fc2.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


@pytest.mark.slow
def test_compiled_blocks_give_the_same_outputs(make_tiny: Callable) -> None:
    model, batch = make_tiny(seed=10), _batch()
    scale_map = _mixed_scale_map(batch)
    with torch.no_grad():
        eager = model(batch, scale_map=scale_map)
        model.compile_blocks()
        compiled = model(batch, scale_map=scale_map)
        compiled_again = model(_batch(seed=1), scale_map=scale_map)  # other lengths: no error
    _assert_outputs_close(eager, compiled, atol=1e-4)
    assert torch.isfinite(compiled_again.final.joints).all()


def test_scale_map_override_shape_is_checked(make_tiny: Callable) -> None:
    with pytest.raises(
        ValueError, match=r"scale_map has shape \(2, 4, 4, 2\), expected \(2, 8, 8, 2\)"
    ):
        make_tiny()(_batch(), scale_map=torch.zeros(2, 4, 4, 2))


def test_mean_params(make_tiny: Callable, tmp_path) -> None:
    model = make_tiny()
    assert torch.equal(model.mean_pose[:6], torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]))
    pose, shape = torch.randn(144), torch.randn(10)
    np.savez(tmp_path / "smpl_mean_params.npz", pose=pose.numpy(), shape=shape.numpy())
    model.load_mean_params(tmp_path / "smpl_mean_params.npz")
    assert torch.equal(model.mean_pose, pose)
    assert torch.equal(model.mean_shape, torch.cat([shape, torch.zeros(1)]))  # kid coefficient 0
    np.savez(tmp_path / "bad.npz", pose=np.zeros(72), shape=np.zeros(10))
    with pytest.raises(ValueError, match="expected \\(144,\\) / \\(10,\\)"):
        model.load_mean_params(tmp_path / "bad.npz")
