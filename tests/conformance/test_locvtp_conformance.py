"""transformers' own `ModelTesterMixin` and `ConfigTester` run against `LocVTPModel` / `LocVTPConfig`."""

import unittest

import pytest

from vidtempo.modeling import LocVTPConfig, LocVTPModel

from ._suite import load_suite, skip_not_applicable

suite = load_suite()
ModelTesterMixin, ConfigTester = suite.ModelTesterMixin, suite.ConfigTester
floats_tensor, ids_tensor = suite.floats_tensor, suite.ids_tensor

pytestmark = pytest.mark.conformance


class LocVTPVideoTester:
    """Video-only inputs for `get_video_features` (the suite would otherwise rename them `pixel_values_videos`)."""

    def __init__(self, parent: "LocVTPModelTester"):
        self.parent = parent
        self.num_hidden_layers = parent.vision_config["num_hidden_layers"]

    def prepare_config_and_inputs_for_common(self):
        config, inputs = self.parent.prepare_config_and_inputs_for_common()
        return config, {"pixel_values": inputs["pixel_values"]}


class LocVTPModelTester:
    """Tiny LocVTP: a 1-layer TimeSformer on 2-frame 16x16 clips and a 2-layer DistilBERT."""

    def __init__(
        self, parent, batch_size=2, num_clips=3, frames=2, image_size=16, seq_length=7, is_training=True
    ):
        self.parent = parent
        self.batch_size = batch_size
        self.num_clips = num_clips
        self.frames = frames
        self.image_size = image_size
        self.patch_size = 8
        self.seq_length = seq_length
        self.is_training = is_training
        self.hidden_size = 32
        self.num_hidden_layers = 2
        self.num_attention_heads = 4
        self.vocab_size = 50
        self.vision_config = dict(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            image_size=image_size, patch_size=self.patch_size, num_frames=frames,
        )  # fmt: skip
        self.text_config = dict(
            vocab_size=self.vocab_size, dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=64,
        )  # fmt: skip
        self.video_model_tester = LocVTPVideoTester(self)

    def get_config(self) -> LocVTPConfig:
        return LocVTPConfig(
            vision_config=dict(self.vision_config), text_config=dict(self.text_config), projection_dim=16,
            frames_per_clip=self.frames, special_token_ids=[0, 1, 2],
        )  # fmt: skip

    def prepare_config_and_inputs_for_common(self):
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size - 3) + 3  # real words
        input_ids[:, 0], input_ids[:, -1] = 1, 2  # [CLS] ... [SEP]
        pixel_values = floats_tensor(
            [self.batch_size, self.num_clips, self.frames, 3, self.image_size, self.image_size]
        )
        inputs = {
            "input_ids": input_ids,
            "attention_mask": input_ids.new_ones(input_ids.shape),
            "pixel_values": pixel_values,
            "return_loss": True,
        }
        return self.get_config(), inputs


class LocVTPModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (LocVTPModel,)
    _is_composite = True
    # skipped: resizing the vocabulary of a dual encoder's text tower is not part of LocVTP (as for CLIPModel)
    test_resize_embeddings = False
    # skipped: torch.export of a forward that samples δ and does data-dependent top-K selection
    test_torch_exportable = False
    has_attentions = True

    def setUp(self):
        self.model_tester = LocVTPModelTester(self)
        self.config_tester = ConfigTester(self, config_class=LocVTPConfig, has_text_modality=False)

    def test_config(self):
        self.config_tester.run_common_tests()


skip_not_applicable(
    LocVTPModelTest,
    {
        "test_hidden_states_output": "LocVTPOutput keeps the towers' hidden states in vision/text_model_output, as CLIPOutput",
        "test_retain_grad_hidden_states_attentions": "LocVTPOutput keeps the towers' hidden states in vision/text_model_output, as CLIPOutput",
        "test_attention_outputs": "LocVTPOutput keeps the towers' attentions in vision/text_model_output, as CLIPOutput",
    },
)
