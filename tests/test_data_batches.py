"""Batched augmentation ops and TensorBatches (seeded epochs, DDP sharding)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tpbench.data.augment import Augmentation, random_crop, random_flip
from tpbench.data.batches import TensorBatches
from tpbench.data.fake import FakeDataModule
from tpbench.errors import ConfigError


def images(n: int = 16, c: int = 3, h: int = 8, w: int = 8) -> torch.Tensor:
    return torch.randint(1, 256, (n, c, h, w), generator=torch.Generator().manual_seed(0)).byte()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- augmentation -----------------------------------------------------------------------------
def test_crop_with_padding_0_is_identity():
    x = images()
    assert torch.equal(random_crop(x, 0, gen()), x)
    assert torch.equal(Augmentation(crop_padding=0)(x, gen()), x)


def test_crop_is_a_shifted_window_of_the_zero_padded_image():
    x, p = images(), 2
    out = random_crop(x, p, gen(1))
    padded = F.pad(x, (p,) * 4)  # (N, C, H + 2p, W + 2p)
    assert out.shape == x.shape and out.dtype == torch.uint8
    offsets = set()
    for i in range(len(x)):
        windows = [
            (dy, dx)
            for dy in range(2 * p + 1)
            for dx in range(2 * p + 1)
            if torch.equal(out[i], padded[i, :, dy : dy + 8, dx : dx + 8])
        ]
        assert windows, f"sample {i} is not a crop"
        offsets.add(windows[0])
    assert len(offsets) > 3  # offsets are drawn per sample


@pytest.mark.parametrize("dim", [2, 3])
def test_flips_flip_about_half_the_samples(dim):
    x = images(n=200)
    out = random_flip(x, dim, gen(2))
    flipped = torch.tensor([torch.equal(o, xi.flip(dim - 1)) for o, xi in zip(out, x)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x)])
    assert (flipped | kept).all()
    assert 60 < int(flipped.sum()) < 140


def test_hflip_mirrors_columns_and_vflip_rows():
    x = images(n=64)
    h = Augmentation(hflip=True)(x, gen(3))
    v = Augmentation(vflip=True)(x, gen(3))
    changed_h = [i for i in range(64) if not torch.equal(h[i], x[i])]
    changed_v = [i for i in range(64) if not torch.equal(v[i], x[i])]
    assert changed_h and changed_v
    assert all(torch.equal(h[i], x[i].flip(2)) for i in changed_h)  # (C, H, W): W flipped
    assert all(torch.equal(v[i], x[i].flip(1)) for i in changed_v)  # H flipped


def test_augmentation_is_reproducible_from_its_seed():
    aug, x = Augmentation(crop_padding=2, hflip=True, vflip=True), images()
    assert torch.equal(aug(x, gen(5)), aug(x, gen(5)))
    assert not torch.equal(aug(x, gen(5)), aug(x, gen(6)))


def test_bad_augment_config_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="crop_padding=-1"):
        Augmentation(crop_padding=-1)
    with pytest.raises(ConfigError, match="valid keys: crop_padding, hflip, vflip"):
        FakeDataModule(augment={"rotate": 10})


# --- TensorBatches ------------------------------------------------------------------------------
def _ids(batches: TensorBatches) -> list[list[int]]:
    return [x.view(-1).tolist() for x, _ in batches]


def test_epochs_are_seeded_permutations():
    x = torch.arange(50).float().view(50, 1)
    epoch = [0]
    b = TensorBatches(x, torch.zeros(50), 8, shuffle=True, seed=1, epoch=lambda: epoch[0])
    first = _ids(b)
    assert len(first) == len(b) == 7 and sorted(sum(first, [])) == list(range(50))
    assert _ids(b) == first  # same epoch, same batches (resume)
    epoch[0] = 1
    assert _ids(b) != first


@pytest.mark.parametrize("n, batch_size", [(50, 8), (48, 8), (10, 4)])
def test_world_size_2_training_batches_are_disjoint_and_even(n, batch_size):
    x = torch.arange(n).float().view(n, 1)
    ranks = [
        TensorBatches(x, torch.zeros(n), batch_size, shuffle=True, seed=3, rank=r, world_size=2)
        for r in range(2)
    ]
    seen = [sum(_ids(b), []) for b in ranks]
    assert len(_ids(ranks[0])) == len(_ids(ranks[1])) == len(ranks[0]) == len(ranks[1])
    assert set(seen[0]).isdisjoint(seen[1])
    assert len(seen[0]) + len(seen[1]) > n - 2 * batch_size  # at most one batch per rank dropped


@pytest.mark.parametrize("n, batch_size", [(50, 8), (10_000, 1000), (7, 100)])
def test_world_size_2_evaluation_sees_every_sample_once(n, batch_size):
    x = torch.arange(n).float().view(n, 1)
    ranks = [TensorBatches(x, torch.zeros(n), batch_size, rank=r, world_size=2) for r in range(2)]
    batches = [_ids(b) for b in ranks]
    assert len(batches[0]) == len(batches[1]) == len(ranks[0])
    assert max(len(b) for b in batches[0] + batches[1]) <= batch_size
    assert sorted(sum(batches[0] + batches[1], [])) == list(range(n))


def test_train_batches_are_augmented_then_normalised():
    dm = FakeDataModule(augment={"crop_padding": 1}, batch_size=32)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 1, 28, 28) and x.dtype == torch.float32 and y.shape == (32,)
    assert (x == 0).any()  # zero padding shows in the crops
    xv, _ = next(iter(dm.val_dataloader()))
    assert torch.equal(xv, dm.splits["val"][0][: len(xv)])  # evaluation: never augmented
