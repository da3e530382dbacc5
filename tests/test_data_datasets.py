"""Image I/O, dataset layouts and pairing (evaluation.md §8), embedded images (§9), patch sampling."""

import json
import socket
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trisr.data import (
    EMBEDDED_TRAIN,
    EMBEDDED_VAL,
    ImagePair,
    RESCALE_FACTORS,
    PatchSampler,
    bicubic_downscale,
    imresize,
    detect_layout,
    list_images,
    load_embedded,
    load_image,
    load_pairs,
    modcrop,
    pair_images,
    quantize_uint8,
    rescaled_pairs,
    save_image,
    split_pairs,
    to_tensor,
    to_uint8,
)
from trisr.errors import DataError, ImageError

# ------------------------------------------------------------------------------------------ helpers


def make_hr(seed: int, h: int = 26, w: int = 30) -> np.ndarray:
    """A small smooth-ish RGB image (sizes deliberately not multiples of the scale)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 120 + 60 * np.sin(x / 3.0 + seed) + 40 * np.cos(y / 4.0)
    img = base[:, :, None] + rng.normal(0, 10, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_set(hr_dir: Path, lr_dir: Path | None, names, scale, lr_name=lambda n, s: f"{n}x{s}", seed=0, hr_size=(26, 30)):
    """Write HR images (and their LR, if lr_dir) and return {name: hr array}."""
    out = {}
    for i, name in enumerate(names):
        hr = make_hr(seed + i, *hr_size)
        save_image(hr_dir / f"{name}.png", hr)
        if lr_dir is not None:
            save_image(lr_dir / f"{lr_name(name, scale)}.png", bicubic_downscale(hr, scale))
        out[name] = hr
    return out


def check_pairs(pairs, expected: dict, scale: int):
    assert sorted(p.name for p in pairs) == sorted(expected)
    for p in pairs:
        hr = expected[p.name]
        np.testing.assert_array_equal(p.hr, modcrop(hr, scale))
        np.testing.assert_array_equal(p.lr, bicubic_downscale(hr, scale))
        assert p.hr.shape[:2] == (p.lr.shape[0] * scale, p.lr.shape[1] * scale)
        assert p.hr.dtype == p.lr.dtype == np.uint8


def snapshot(root: Path):
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*"))


# ----------------------------------------------------------------------------------------- image I/O


def test_load_image_modes(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(grey).save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :, 1], grey)

    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 7
    Image.fromarray(rgba).save(tmp_path / "a.png")
    out = load_image(str(tmp_path / "a.png"))
    assert out.shape == (2, 3, 3) and out[0, 0, 0] == 200

    Image.fromarray(make_hr(0)).convert("P").save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png").shape == (26, 30, 3)


def test_load_image_errors(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)
    (tmp_path / "x.png").write_bytes(b"this is definitely not a png \x00\x01\x02" * 10)
    with pytest.raises(ImageError, match=r"x\.png: not a valid image file"):
        load_image(tmp_path / "x.png")
    save_image(tmp_path / "good.png", make_hr(1, 64, 64))
    data = (tmp_path / "good.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="trunc.png"):
        load_image(tmp_path / "trunc.png")
    Image.new("I;16", (4, 4), 1000).save(tmp_path / "deep.png")
    with pytest.raises(ImageError, match="unsupported"):
        load_image(tmp_path / "deep.png")


def test_save_image_round_trip(tmp_path):
    img = make_hr(2)
    path = save_image(tmp_path / "a" / "b" / "out.png", img)
    np.testing.assert_array_equal(load_image(path), img)
    with pytest.raises(ImageError):
        save_image(tmp_path / "out.jpg", img)
    with pytest.raises(ImageError):
        save_image(tmp_path / "f.png", img.astype(np.float32))


def test_list_images(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        list_images(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        list_images(tmp_path / "empty")
    for n in ["b.png", "a.JPG", "c.txt", ".hidden.png"]:
        (tmp_path / n).write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png"]


def test_tensor_conversion():
    img = make_hr(3)
    t = to_tensor(img)
    assert t.shape == (1, 3, 26, 30) and t.dtype == torch.float32
    assert float(t.min()) >= 0 and float(t.max()) <= 1
    np.testing.assert_array_equal(to_uint8(t), img)
    odd = torch.tensor([-0.5, 0.5 / 255, 1.49 / 255, 2.0]).view(1, 1, 4).expand(3, 1, 4)
    np.testing.assert_array_equal(to_uint8(odd)[0, :, 0], [0, 1, 1, 255])
    with pytest.raises(ImageError):
        to_uint8(torch.full((1, 3, 2, 2), float("nan")))


# ------------------------------------------------------------------------------------------ layouts


def test_div2k_layout_and_split(tmp_path):
    s = 2
    train = write_set(tmp_path / "DIV2K_train_HR", tmp_path / "DIV2K_train_LR_bicubic" / "X2", ["0001", "0002"], s)
    val = write_set(tmp_path / "DIV2K_valid_HR", tmp_path / "DIV2K_valid_LR_bicubic" / "X2", ["0801"], s, seed=9)
    layout = detect_layout(tmp_path, s, "train")
    assert layout.kind == "div2k" and not layout.generates_lr
    before = snapshot(tmp_path)
    check_pairs(load_pairs(tmp_path, s, split="train"), train, s)
    check_pairs(load_pairs(tmp_path, s, split="val"), val, s)
    # pointing at the HR folder itself works too
    check_pairs(load_pairs(tmp_path / "DIV2K_valid_HR", s), val, s)
    # a scale without an LR folder: LR generated in memory, nothing written
    pairs = load_pairs(tmp_path, 3, split="train")
    assert all(p.lr_origin.startswith("generated") for p in pairs)
    check_pairs(pairs, train, 3)
    assert snapshot(tmp_path) == before


def test_df2k_train_includes_flickr2k(tmp_path):
    s = 2
    div = write_set(tmp_path / "DIV2K_train_HR", tmp_path / "DIV2K_train_LR_bicubic" / "X2", ["0001"], s)
    fl = write_set(tmp_path / "Flickr2K_HR", tmp_path / "Flickr2K_LR_bicubic" / "X2", ["000001"], s, seed=5)
    layout = detect_layout(tmp_path, s, "train")
    assert layout.kind == "div2k+flickr2k"
    pairs = load_pairs(tmp_path, s)
    assert [p.name for p in pairs] == ["0001", "000001"]  # DIV2K_train_HR part, then Flickr2K_HR
    check_pairs(pairs, {**div, **fl}, s)
    with pytest.raises(DataError, match="val split"):
        load_pairs(tmp_path, s, split="val")


def test_edsr_benchmark_layout(tmp_path):
    s = 4
    root = tmp_path / "benchmark" / "Set5"
    hrs = write_set(root / "HR", root / "LR_bicubic" / "X4", ["baby", "bird"], s)
    assert detect_layout(root, s).kind == "edsr"
    check_pairs(load_pairs(root, s), hrs, s)
    check_pairs(load_pairs(root / "HR", s), hrs, s)
    # HR is not modcropped here (26x30) -- GT was cropped to lr*s
    assert load_pairs(root, s)[0].hr.shape == (24, 28, 3)
    write_set(tmp_path / "benchmark" / "Set14" / "HR", None, ["zebra"], s)
    with pytest.raises(DataError, match="several datasets"):
        load_pairs(tmp_path / "benchmark", s)


def test_basicsr_layout(tmp_path):
    root = tmp_path / "Set5"
    hrs = {}
    for i, name in enumerate(["baby", "head"]):
        hr = make_hr(i, 38, 50)  # not a multiple of 12
        save_image(root / "original" / f"{name}.png", hr)
        gt12 = modcrop(hr, 12)
        save_image(root / "GTmod12" / f"{name}.png", gt12)
        save_image(root / "LRbicx2" / f"{name}.png", bicubic_downscale(gt12, 2))
        hrs[name] = gt12
    assert detect_layout(root, 2).kind == "basicsr"
    assert detect_layout(root, 2).parts[0][0].name == "GTmod12"
    check_pairs(load_pairs(root, 2), hrs, 2)
    # originals + LR made from GTmod12 are accepted: the GT is cropped to lr*s = GTmod12
    for p in (root / "GTmod12").iterdir():
        p.unlink()
    (root / "GTmod12").rmdir()
    assert detect_layout(root, 2).parts[0][0].name == "original"
    check_pairs(load_pairs(root, 2), hrs, 2)


def test_selfexsr_layout(tmp_path):
    root = tmp_path / "Set5"
    d = root / "image_SRF_4"
    hrs = {}
    for i in (1, 2):
        hr = modcrop(make_hr(i, 40, 36), 4)
        save_image(d / f"img_00{i}_SRF_4_HR.png", hr)
        save_image(d / f"img_00{i}_SRF_4_LR.png", bicubic_downscale(hr, 4))
        save_image(d / f"img_00{i}_SRF_4_bicubic.png", hr)  # method output, ignored
        hrs[f"img_00{i}"] = hr
    (root / "image_SRF_2").mkdir()
    assert detect_layout(root, 4).kind == "selfexsr"
    check_pairs(load_pairs(root, 4), hrs, 4)
    check_pairs(load_pairs(d, 4), hrs, 4)
    with pytest.raises(DataError, match="image_SRF_3"):
        load_pairs(root, 3)


def test_eugenesiow_layout(tmp_path):
    hrs = write_set(tmp_path / "Set5_HR", tmp_path / "Set5_LR_x2", ["baby", "woman"], 2, lr_name=lambda n, s: n)
    assert detect_layout(tmp_path, 2).kind == "eugenesiow"
    check_pairs(load_pairs(tmp_path, 2), hrs, 2)


def test_plain_folder_generates_lr(tmp_path):
    hrs = write_set(tmp_path / "photos", None, ["b", "a", "c"], 3)
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    before = snapshot(tmp_path)
    layout = detect_layout(tmp_path / "photos", 3)
    assert layout.kind == "plain" and layout.generates_lr
    pairs = load_pairs(tmp_path / "photos", 3)
    assert [p.name for p in pairs] == ["a", "b", "c"]  # file-name order
    check_pairs(pairs, hrs, 3)
    assert all("matlab-bicubic" in p.lr_origin for p in pairs)
    assert snapshot(tmp_path) == before  # nothing written into the user's folder
    check_pairs(load_pairs(tmp_path / "photos", 3), hrs, 3)  # cached path gives the same


def test_edsr_without_lr_folder_generates(tmp_path):
    hrs = write_set(tmp_path / "HR", None, ["x", "y"], 2)
    (tmp_path / "LR_bicubic" / "X4").mkdir(parents=True)
    layout = detect_layout(tmp_path, 2)
    assert layout.parts == ((tmp_path / "HR", None),)
    check_pairs(load_pairs(tmp_path, 2), hrs, 2)


def test_dataset_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_pairs(tmp_path / "nothing", 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_pairs(tmp_path / "empty", 2)
    # LR of the wrong size for its HR
    write_set(tmp_path / "bad" / "HR", tmp_path / "bad" / "LR_bicubic" / "X2", ["a"], 2)
    save_image(tmp_path / "bad" / "LR_bicubic" / "X2" / "ax2.png", make_hr(0, 10, 10))
    with pytest.raises(DataError, match=r"ax2\.png is 10x10 \(HxW\) but its HR a\.png is 26x30.*13x15"):
        load_pairs(tmp_path / "bad", 2)
    # corrupt image inside a dataset
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "x.png").write_bytes(b"garbage" * 50)
    with pytest.raises(ImageError, match="not a valid image file"):
        load_pairs(tmp_path / "corrupt", 2)
    with pytest.raises(ValueError):
        load_pairs(None, 2, split="test")


# ------------------------------------------------------------------------------------------ pairing


def touch(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n in names:
        (folder / n).write_bytes(b"")
        out.append(folder / n)
    return out


def test_pairing_rules_in_order(tmp_path):
    hr = touch(tmp_path / "hr", "a.png", "img_SRF_2_HR.png")
    # rule 1 (same name) beats rule 2 (x2 suffix); rule 2 beats rule 3 (SRF)
    lr = touch(tmp_path / "lr", "a.png", "ax2.png", "img_SRF_2_HRx2.png", "img_SRF_2_LR.png")
    with pytest.warns(UserWarning, match="no HR partner"):
        pairs = pair_images(hr, lr, 2)
    assert [(h.name, l.name) for h, l in pairs] == [("a.png", "a.png"), ("img_SRF_2_HR.png", "img_SRF_2_HRx2.png")]
    # each rule on its own
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pair_images(hr[:1], touch(tmp_path / "r2", "ax2.png"), 2)[0][1].name == "ax2.png"
        assert pair_images(hr[1:], touch(tmp_path / "r3", "img_SRF_2_LR.png"), 2)[0][1].name == "img_SRF_2_LR.png"
        # names are matched by stem, so the extension may differ
        assert pair_images(hr[:1], touch(tmp_path / "ext", "a.bmp"), 2)[0][1].name == "a.bmp"


def test_pairing_sorted_fallback_warns(tmp_path):
    hr = touch(tmp_path / "hr", "b.png", "a.png")
    lr = touch(tmp_path / "lr", "low_2.png", "low_1.png")
    with pytest.warns(UserWarning, match="sorted order"):
        pairs = pair_images(hr, lr, 4)
    assert [(h.name, l.name) for h, l in pairs] == [("a.png", "low_1.png"), ("b.png", "low_2.png")]
    with pytest.raises(DataError, match="no names match"):
        pair_images(hr, lr[:1], 4)
    with pytest.raises(DataError, match="no LR image for HR b.png"):
        pair_images(hr, touch(tmp_path / "lr2", "a.png", "zzz.png"), 4)


def test_load_pairs_sorted_fallback(tmp_path):
    s = 2
    hrs = write_set(tmp_path / "HR", tmp_path / "LR_bicubic" / "X2", ["p", "q"], s, lr_name=lambda n, s: f"lr_{n}")
    with pytest.warns(UserWarning, match="sorted order"):
        pairs = load_pairs(tmp_path, s)
    check_pairs(pairs, hrs, s)


# ------------------------------------------------------------------------------------------ embedded


def test_embedded_images_load_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    assert set(EMBEDDED_TRAIN).isdisjoint(EMBEDDED_VAL)
    assert EMBEDDED_VAL == ("chelsea", "coffee")
    train = load_embedded("train")
    assert [n for n, _ in train] == list(EMBEDDED_TRAIN)
    for _, img in train + load_embedded("val"):
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert min(img.shape[:2]) >= 128
    val = load_pairs(None, 4, split="val")
    assert [p.name for p in val] == ["chelsea", "coffee"]
    assert val[0].hr.shape == (300, 448, 3) and val[0].lr.shape == (75, 112, 3)


# ------------------------------------------------------------------------------------------ sampler


def nearest_pairs(n=3, h=40, w=48, scale=2):
    """Pairs whose HR is the nearest-neighbour upsampling of the LR, so aligned crops are checkable."""
    out = []
    for i in range(n):
        rng = np.random.default_rng(100 + i)
        lr = rng.integers(0, 256, (h, w + 2 * i, 3), dtype=np.uint8)
        hr = np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)
        out.append(ImagePair(f"im{i}", hr, lr))
    return out


def test_sampler_shapes_alignment_and_flips():
    s, p = 2, 8
    sampler = PatchSampler(nearest_pairs(scale=s), lr_patch=p, scale=s, seed=0)
    lr, hr = sampler.sample(64)
    assert lr.shape == (64, 3, p, p) and hr.shape == (64, 3, p * s, p * s)
    assert lr.dtype == hr.dtype == torch.float32
    assert 0.0 <= float(lr.min()) and float(hr.max()) <= 1.0
    up = lr.repeat_interleave(s, dim=2).repeat_interleave(s, dim=3)
    assert torch.equal(up, hr)  # aligned, flips applied to both
    # flips do happen: compare each LR patch with unflipped crops of its source image
    lr_np, _ = PatchSampler(nearest_pairs(scale=s), p, s, seed=0).sample_numpy(64)
    flipped = 0
    for patch in lr_np:
        found = False
        for pair in nearest_pairs(scale=s):
            wins = np.lib.stride_tricks.sliding_window_view(pair.lr, (p, p, 3))[:, :, 0]
            if (wins == patch).all(axis=(2, 3, 4)).any():
                found = True
        flipped += not found
    assert 10 < flipped < 54


def test_sampler_determinism_and_resume():
    pairs = nearest_pairs()
    a = PatchSampler(pairs, 8, 2, seed=7)
    b = PatchSampler(pairs, 8, 2, seed=7)
    for _ in range(3):
        la, ha = a.sample(4)
        lb, hb = b.sample(4)
        assert torch.equal(la, lb) and torch.equal(ha, hb)
    assert not torch.equal(PatchSampler(pairs, 8, 2, seed=8).sample(4)[0], PatchSampler(pairs, 8, 2, seed=7).sample(4)[0])

    state = json.loads(json.dumps(a.state_dict()))  # JSON round trip
    expected = a.sample(5)
    c = PatchSampler(pairs, 8, 2, seed=7)
    c.load_state_dict(state)
    got = c.sample(5)
    assert torch.equal(expected[0], got[0]) and torch.equal(expected[1], got[1])
    with pytest.raises(DataError, match="lr_patch"):
        PatchSampler(pairs, 4, 2, seed=7).load_state_dict(state)


def test_sampler_patch_too_large():
    pairs = [ImagePair("tiny", np.zeros((40, 60, 3), np.uint8), np.zeros((20, 30, 3), np.uint8))]
    with pytest.raises(DataError, match="image tiny is 20x30 at LR, smaller than the 32x32 patch"):
        PatchSampler(pairs, lr_patch=32, scale=2, seed=0)
    with pytest.raises(DataError, match="HR is"):
        PatchSampler([ImagePair("odd", np.zeros((41, 60, 3), np.uint8), np.zeros((20, 30, 3), np.uint8))], 8, 2)
    with pytest.raises(DataError, match="empty"):
        PatchSampler([], 8, 2)


def test_split_and_shard():
    pairs = nearest_pairs(n=5)
    halves = split_pairs(pairs, 2)
    assert [[p.name for p in h] for h in halves] == [["im0", "im2", "im4"], ["im1", "im3"]]
    with pytest.raises(DataError):
        split_pairs(pairs[:1], 2)
    sampler = PatchSampler(pairs, 8, 2, seed=3)
    arch, weights = sampler.split(2)
    assert {p.name for p in arch.pairs}.isdisjoint(p.name for p in weights.pairs)
    r0, r1 = sampler.shard(0, 2), sampler.shard(1, 2)
    assert len(r0) == len(r1) == 5  # every rank sees all images
    assert not torch.equal(r0.sample(4)[0], r1.sample(4)[0])
    assert torch.equal(sampler.shard(1, 2).sample(3)[0], PatchSampler(pairs, 8, 2, seed=3).shard(1, 2).sample(3)[0])
    assert torch.equal(sampler.shard(0, 1).sample(3)[0], PatchSampler(pairs, 8, 2, seed=3).sample(3)[0])
    with pytest.raises(DataError, match="stream"):
        r0.load_state_dict(r1.state_dict())
    with pytest.raises(ValueError):
        sampler.shard(2, 2)


def test_sampler_on_embedded_pairs():
    pairs = load_pairs(None, 4, split="val")
    lr, hr = PatchSampler(pairs, 32, 4, seed=0).sample(2)
    assert lr.shape == (2, 3, 32, 32) and hr.shape == (2, 3, 128, 128)


def test_rescaled_pairs_are_bicubic_copies_of_the_originals():
    hr = make_hr(3, 60, 44)
    pair = ImagePair("im", modcrop(hr, 2), bicubic_downscale(hr, 2))
    out = rescaled_pairs([pair], (0.9, 0.5), 2)
    assert [p.name for p in out] == ["im", "im@0.9", "im@0.5"]
    assert out[0] is pair  # originals first, untouched
    small = quantize_uint8(imresize(pair.hr, scale=0.5, output_shape=(30, 22)))
    np.testing.assert_array_equal(out[2].hr, modcrop(small, 2))
    np.testing.assert_array_equal(out[2].lr, bicubic_downscale(small, 2))
    assert out[1].hr.shape == (54, 40, 3) and out[1].lr.shape == (27, 20, 3)  # round(60*.9)=54, round(44*.9)=40
    assert rescaled_pairs([pair], (0.9, 0.5), 2)[1] is out[1]  # built once per process
    assert [p.name for p in rescaled_pairs([pair], (0.9, 0.5), 2, min_lr=20)] == ["im", "im@0.9"]  # too small: left out
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        rescaled_pairs([pair], (1.0,), 2)


def test_sampler_rescale_augmentation():
    pairs = [ImagePair(f"im{i}", modcrop(h, 2), bicubic_downscale(h, 2)) for i, h in enumerate(make_hr(i, 80, 72) for i in range(3))]
    sampler = PatchSampler(pairs, 16, 2, seed=0, augment=("dihedral", "rescale"))
    names = [p.name for p in sampler.pairs]
    assert names[:3] == ["im0", "im1", "im2"] and len(names) == 3 * (1 + len(RESCALE_FACTORS))
    assert "im0@0.6" in names
    lr, hr = sampler.sample(8)
    assert lr.shape == (8, 3, 16, 16) and hr.shape == (8, 3, 32, 32)
    # derived samplers start from the photos as given: halves stay image-disjoint, ranks see every copy
    a, b = sampler.split(2)
    assert {p.name.split("@")[0] for p in a.pairs}.isdisjoint(p.name.split("@")[0] for p in b.pairs)
    assert len(sampler.shard(0, 2)) == len(sampler.shard(1, 2)) == len(sampler)
    # resumes exactly, and refuses a state taken without the augmentation
    state = json.loads(json.dumps(sampler.state_dict()))
    expected = sampler.sample(3)
    again = PatchSampler(pairs, 16, 2, seed=0, augment=("dihedral", "rescale"))
    again.load_state_dict(state)
    assert torch.equal(again.sample(3)[1], expected[1])
    with pytest.raises(DataError, match="sampler state does not match"):
        PatchSampler(pairs, 16, 2, seed=0, augment=("dihedral",)).load_state_dict(state)


def test_sampler_rescale_is_off_for_large_sets(monkeypatch):
    import trisr.data.patches as patches

    pairs = [ImagePair(f"im{i}", modcrop(h, 2), bicubic_downscale(h, 2)) for i, h in enumerate(make_hr(i, 80, 72) for i in range(3))]
    monkeypatch.setattr(patches, "RESCALE_MAX_BYTES", 1000)
    with pytest.warns(UserWarning, match="rescale augmentation off"):
        sampler = PatchSampler(pairs, 16, 2, seed=0, augment=("rescale",))
    assert [p.name for p in sampler.pairs] == ["im0", "im1", "im2"]
