"""An ImageNet tower in a two-tower model's vision seat, tuned in its last stages only: the stages below keep the
package's weights and statistics, their outputs are computed once per picture while training, and the halves give
what the whole tower gives."""

import pytest
import torch

from mmsearch.encode.pretrained import PretrainedError
from mmsearch.encode.tower_vision import TowerVision


def tower_vision() -> TowerVision:
    try:
        return TowerVision.named("efficientnet-lite0@64")
    except PretrainedError as exc:
        pytest.skip(f"{exc}")


def pixels(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def test_the_two_halves_give_the_whole_towers_features():
    vision = tower_vision().eval()
    x = pixels()
    with torch.inference_mode():
        whole = vision(pixel_values=x).last_hidden_state
        for cut in (1, 4, 6):
            halves = vision.tower.pooled_above(vision.tower.below(x, cut), cut)
            assert torch.allclose(halves, whole[:, 0], atol=1e-4), cut


def test_only_the_last_stages_learn_and_the_ones_below_run_once_per_picture():
    vision = tower_vision()
    vision.tune_stages(3)
    assert vision.cut == 4 and not vision.locked
    trainable = {n for n, p in vision.named_parameters() if p.requires_grad}
    assert trainable and all(
        n.startswith(
            ("tower.net.blocks.4", "tower.net.blocks.5", "tower.net.blocks.6", "tower.net.conv_head", "tower.net.bn2")
        )
        for n in trainable
    )
    prefixes = vision.lower_prefixes("vision.")
    assert "vision.tower.net.conv_stem." in prefixes and "vision.tower.net.blocks.3." in prefixes
    assert "vision.tower.net.blocks.4." not in prefixes

    vision.train()
    assert not vision.tower.net.blocks[0].training and vision.tower.net.blocks[5].training
    stem = vision.tower.net.conv_stem
    calls = []
    hook = stem.register_forward_hook(lambda *_: calls.append(1))
    x = pixels()
    vision(pixel_values=x).last_hidden_state.sum().backward()
    vision(pixel_values=x).last_hidden_state.sum().backward()  # the same pictures: the lower stages do not run
    vision(pixel_values=pixels(seed=1))  # new pictures: they do
    hook.remove()
    assert len(calls) == 2
    assert vision.tower.net.blocks[6][0].conv_pw.weight.grad is not None
    assert stem.weight.grad is None


def test_a_tower_has_seven_stages_to_tune():
    vision = tower_vision()
    with pytest.raises(ValueError, match="has 7 stages: tune 1 to 7"):
        vision.tune_stages(9)


def test_frozen_first_epochs_then_tuned_stages_do_not_mix_what_they_remember():
    # --freeze-epochs locks the tuned stages too at first: the pooled features it remembers then are not the lower
    # stages' outputs asked for once the tuned stages learn.
    vision = tower_vision()
    vision.tune_stages(2)
    vision.train()
    tuned = [p for p in vision.parameters() if p.requires_grad]
    x = pixels()
    for p in tuned:
        p.requires_grad_(False)
    frozen = vision(pixel_values=x).last_hidden_state
    for p in tuned:
        p.requires_grad_(True)
    tuning = vision(pixel_values=x).last_hidden_state
    assert frozen.shape == tuning.shape == (4, 1, 1280)
    with torch.no_grad():  # still training: the tuned stages' batch norms take the batch's statistics
        fresh = vision.tower.pooled_above(vision.tower.below(x, vision.cut), vision.cut)
    assert torch.allclose(tuning[:, 0].detach(), fresh, atol=0.05)  # the lower outputs are kept in half precision
