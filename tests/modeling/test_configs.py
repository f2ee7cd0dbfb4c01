"""The five configs in one style: `@strict` dataclass configs whose checks live in `validate_*` methods built on
the one shared positive-int / choice check; configs saved by the classic-style code still load."""

import json
import shutil
from pathlib import Path

import pytest
from huggingface_hub.errors import StrictDataclassClassValidationError, StrictDataclassFieldValidationError

from vidtempo.modeling import (
    EfficientNetLiteConfig,
    FrameDescriptorConfig,
    LocVTPConfig,
    TCAComparatorConfig,
    TCAConfig,
)
from vidtempo.modeling.configuration_checks import check_choice, check_positive_int

LEGACY = Path(__file__).parent / "legacy_configs"  # written by the classic-style configs (commit 153ab4e)
CLASSES = {
    "tca": TCAConfig,
    "tca_comparator": TCAComparatorConfig,
    "efficientnet_lite": EfficientNetLiteConfig,
    "frame_descriptor": FrameDescriptorConfig,
    "frame_descriptor_resnet": FrameDescriptorConfig,
    "locvtp": LocVTPConfig,
}
# (class, a field, a value of the wrong type, a setting only a validate_* method can refuse)
CASES = [
    (TCAConfig, "hidden_size", "wide", {"aggregator": "attention"}),
    (TCAComparatorConfig, "in_channels", 1.5, {"in_channels": 0}),
    (EfficientNetLiteConfig, "stem_channels", "32", {"out_features": ["stage9"]}),
    (FrameDescriptorConfig, "pooling", 3, {"pooling": "gem"}),
    (LocVTPConfig, "num_clips", 2.0, {"topk_words": 0}),
]


class _Config:
    def __init__(self, **values):
        self.__dict__.update(values)


@pytest.mark.parametrize("cls", sorted({c[0] for c in CASES}, key=lambda c: c.__name__))
def test_every_config_is_a_strict_dataclass_with_validate_methods(cls):
    own = [v.__name__ for v in cls.__class_validators__ if v.__qualname__.startswith(cls.__name__ + ".")]
    assert own, f"{cls.__name__} has no validate_* method of its own"
    assert getattr(cls.validate, "__is_defined_by_strict_decorator__", False)


@pytest.mark.parametrize("cls, field, wrong, _", CASES)
def test_wrong_types_are_refused_on_assignment(cls, field, wrong, _):
    config = cls()
    with pytest.raises(StrictDataclassFieldValidationError, match=field):
        setattr(config, field, wrong)


@pytest.mark.parametrize("cls, _, __, bad", CASES)
def test_validate_refuses_a_setting_changed_after_construction(cls, _, __, bad):
    config = cls()
    config.validate()  # the defaults are valid
    ((name, value),) = bad.items()
    object.__setattr__(config, name, value)  # around the field validator: only validate_* can see it
    with pytest.raises(StrictDataclassClassValidationError, match=name):
        config.validate()


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_configs_saved_by_the_classic_style_still_load(name, tmp_path):
    saved = json.loads((LEGACY / f"{name}.json").read_text())
    shutil.copy(LEGACY / f"{name}.json", tmp_path / "config.json")
    config = CLASSES[name].from_pretrained(tmp_path)
    now = config.to_dict()
    for key, value in saved.items():
        if key in ("transformers_version", "auto_map"):
            continue
        if key.endswith(
            "_config"
        ):  # nested: compare the keys the old file has (id2label keys come back as ints)
            nested = now[key]
            for sub, sub_value in value.items():
                if sub not in ("transformers_version", "id2label"):
                    assert nested[sub] == sub_value, (name, key, sub)
        elif key != "id2label":
            assert now[key] == value, (name, key)
    config.save_pretrained(tmp_path / "again")
    assert CLASSES[name].from_pretrained(tmp_path / "again").to_dict() == now


def _folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(LEGACY / f"{name}.json", folder / "config.json")
    return folder


def test_legacy_values_that_matter_survive(tmp_path):
    lite = EfficientNetLiteConfig.from_pretrained(_folder(tmp_path, "efficientnet_lite"))
    assert (lite.num_labels, lite.out_features, lite.stem_channels) == (3, ["stage1", "head"], 8)
    descriptor = FrameDescriptorConfig.from_pretrained(_folder(tmp_path, "frame_descriptor"))
    assert isinstance(descriptor.backbone_config, EfficientNetLiteConfig)
    assert (descriptor.pca_dim, descriptor.feature_dim) == (16, 24 + 40 + 112 + 64)
    locvtp = LocVTPConfig.from_pretrained(_folder(tmp_path, "locvtp"))
    assert (locvtp.special_token_ids, locvtp.vision_config.num_frames, locvtp.text_config.dim) == (
        [0, 1, 2],
        2,
        16,
    )


def test_defaults_are_unchanged():
    assert TCAConfig().to_dict()["num_attention_heads"] == 8
    assert TCAComparatorConfig().conv_channels == [32, 64, 128]
    assert EfficientNetLiteConfig().num_labels == 1000
    assert EfficientNetLiteConfig().out_features == ["stage2", "stage3", "stage5", "head"]
    assert FrameDescriptorConfig().feature_dim == 3840
    assert LocVTPConfig().special_token_ids == [0, 101, 102]


def test_the_shared_checks_against_hand_worked_cases():
    config = _Config(a=3, b=0, c=True, d=2.0, e=-1, mode="x")
    check_positive_int(config, "a")
    check_positive_int(config, "b", allow_zero=True)
    for name, allow_zero in (("b", False), ("c", False), ("d", False), ("e", True), ("c", True)):
        with pytest.raises(ValueError, match=rf"_Config\.{name} must be a (positive|non-negative) integer"):
            check_positive_int(config, name, allow_zero=allow_zero)
    check_choice(config, "mode", ("x", "y"))
    with pytest.raises(ValueError, match=r"_Config\.mode must be one of \['y'\], got 'x'"):
        check_choice(config, "mode", ("y",))


def test_no_config_writes_its_own_positive_int_loop():
    """The four hand copies are gone: no config file writes the positive-integer message itself."""
    folder = Path(__file__).resolve().parents[2] / "modeling"
    sources = [*folder.glob("configuration_*.py"), folder / "modeling_tca_comparator.py"]
    counts = {p.name: p.read_text().count("must be a positive integer") for p in sources}
    assert len(counts) == 7 and set(counts.values()) == {0}  # the one check builds its message from parts
