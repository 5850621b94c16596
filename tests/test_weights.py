"""Weights: format detection, strict loading with clear errors, safety, saving, manifest."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch
from conftest import shared_path
from safetensors import safe_open

from streamdeblur.core.errors import WeightsError
from streamdeblur.engine import weights
from streamdeblur.engine.weights import load_model
from streamdeblur.models import get_spec
from streamdeblur.models.rt_focuser import RTFocuser
from streamdeblur.models.uhdvd import RELEASE_FILES, UHDVD


def fake_uhdvd_release(folder: Path) -> UHDVD:
    """A release-style directory (eight sub-net state_dicts) of a random UHDVD."""
    torch.manual_seed(0)
    model = UHDVD()
    folder.mkdir()
    for name in RELEASE_FILES:
        torch.save(getattr(model, name.removesuffix(".pkl")).state_dict(), folder / name)
    return model


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_official_uhdvd_release_dir_loads() -> None:
    folder = shared_path("fixtures", "uhdvd_official", "checkpoints", "4KRD")
    state = weights.load_state_dict(folder, get_spec("uhdvd"))  # legacy pickles, weights_only
    assert len(state) == 4 * (39 + 30) and "encoder_lv1.layer1.weight" in state


def test_uhdvd_release_dir_round_trip(tmp_path: Path) -> None:
    original = fake_uhdvd_release(tmp_path / "4KRD")
    assert_same_weights(load_model("uhdvd", tmp_path / "4KRD"), original)


def test_incomplete_release_dir_lists_missing_files(tmp_path: Path) -> None:
    fake_uhdvd_release(tmp_path / "4KRD")
    (tmp_path / "4KRD" / "decoder_lv3.pkl").unlink()
    with pytest.raises(WeightsError, match=r"missing decoder_lv3\.pkl$"):
        load_model("uhdvd", tmp_path / "4KRD")
    with pytest.raises(WeightsError, match="pass its directory"):
        load_model("uhdvd", tmp_path / "4KRD" / "encoder_lv1.pkl")


def test_wrong_model_is_named(tmp_path: Path) -> None:
    fake_uhdvd_release(tmp_path / "4KRD")
    with pytest.raises(WeightsError, match="are for uhdvd, not rt-focuser"):
        load_model("rt-focuser", tmp_path / "4KRD")
    torch.save(RTFocuser().state_dict(), tmp_path / "rt.pth")
    with pytest.raises(WeightsError, match="are for rt-focuser, not uhdvd"):
        load_model("uhdvd", tmp_path / "rt.pth")
    weights.save_weights(RTFocuser().state_dict(), tmp_path / "rt.safetensors", get_spec("rt-focuser"))
    with pytest.raises(WeightsError, match="are for rt-focuser, not uhdvd"):
        load_model("uhdvd", tmp_path / "rt.safetensors")


def test_wrapped_and_prefixed_checkpoint_loads(tmp_path: Path) -> None:
    original = RTFocuser()
    state = {f"module.{k}": v for k, v in original.state_dict().items()}
    torch.save({"model": state, "epoch": 3, "args": {"lr": 1e-4}}, tmp_path / "ckpt.pth")
    assert_same_weights(load_model("rt-focuser", tmp_path / "ckpt.pth"), original)


def test_key_and_shape_mismatches_are_summarised(tmp_path: Path) -> None:
    state = RTFocuser().state_dict()
    del state["Conv_1x1.bias"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match=r"1 missing \(Conv_1x1.bias\), 0 unexpected"):
        load_model("rt-focuser", tmp_path / "partial.pth")
    state = RTFocuser(dims=(16, 32, 128, 160, 128)).state_dict()  # same keys, narrower bottleneck
    torch.save(state, tmp_path / "narrow.pth")
    with pytest.raises(WeightsError, match="shape mismatches"):
        load_model("rt-focuser", tmp_path / "narrow.pth")


class Exploit:
    """Unpickling this runs a shell command: exactly what weights_only must refuse."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickles_with_objects_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    torch.save({"Conv_1x1.weight": torch.zeros(3, 16, 1, 1), "x": Exploit(marker)}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match=r"refusing .*objects other than tensors"):
        load_model("rt-focuser", tmp_path / "evil.pth")
    assert not marker.exists()


@pytest.mark.parametrize("name", ["bad.pth", "bad.safetensors", "bad.pkl"])
def test_corrupt_files_are_one_line_errors(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"not weights at all" * 10)
    with pytest.raises(WeightsError, match="unreadable") as err:
        load_model("rt-focuser", tmp_path / name)
    assert "\n" not in str(err.value)


def test_fp16_round_trip_loads_into_fp32(tmp_path: Path) -> None:
    spec = get_spec("rt-focuser")
    original = RTFocuser()
    path = weights.save_weights(
        original.state_dict(), tmp_path / "rt.safetensors", spec, metadata={"recipe": "test"}, half=True
    )
    with safe_open(path, framework="pt") as f:
        assert f.metadata() == {"format": "streamdeblur", "model": "rt-focuser", "recipe": "test"}
        assert f.get_tensor("Conv_1x1.weight").dtype == torch.float16
        assert f.get_tensor("stem.conv.1.num_batches_tracked").dtype == torch.int64
    expected_state = original.state_dict()
    for key, value in load_model("rt-focuser", path).state_dict().items():
        expected = expected_state[key]
        assert value.dtype == expected.dtype
        if value.is_floating_point():
            assert torch.equal(value, expected.half().float())


def test_default_weights_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = dataclasses.replace(get_spec("uhdvd"), default_weights="uhdvd-test-absent.safetensors")
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(WeightsError) as err:
        weights.resolve_weights(spec, "default")
    message = str(err.value)
    assert message.startswith("no default weights for uhdvd yet") and str(tmp_path) in message
    assert "pass --weights PATH" in message and "UHDVD release directory" in message and "\n" not in message
    (tmp_path / spec.weights_file).write_bytes(b"")
    assert weights.resolve_weights(spec, "default") == tmp_path / spec.weights_file


def test_missing_path() -> None:
    with pytest.raises(WeightsError, match="not found"):
        load_model("uhdvd", "/nonexistent/uhdvd.safetensors")


def test_manifest(tmp_path: Path) -> None:
    assert weights.read_manifest(tmp_path) == {}
    for name in ("a.safetensors", "b.safetensors"):
        (tmp_path / name).write_bytes(name.encode())
        weights.update_manifest(tmp_path, name, {"model": "rt-focuser", "recipe": {"steps": 10}})
    manifest = weights.read_manifest(tmp_path)
    assert set(manifest) == {"a.safetensors", "b.safetensors"}
    assert manifest["a.safetensors"] == {
        "model": "rt-focuser",
        "recipe": {"steps": 10},
        "sha256": weights.sha256(tmp_path / "a.safetensors"),
    }
    (tmp_path / weights.MANIFEST).write_text("{broken")
    with pytest.raises(WeightsError, match="unreadable"):
        weights.read_manifest(tmp_path)
