"""transformers' `ModelTesterMixin` and `ConfigTester` run against `TCAModel` (see `_suite.py`)."""

from __future__ import annotations

import unittest

import pytest
import torch

from vidtempo.modeling import TCAConfig, TCAModel

from ._suite import load_suite, skip_not_applicable

suite = load_suite()
pytestmark = pytest.mark.conformance


class TCAModelTester:
    """Builds a tiny TCA config and random padded inputs for the common tests."""

    def __init__(
        self,
        parent,
        batch_size: int = 3,
        seq_length: int = 7,
        input_size: int = 24,
        hidden_size: int = 32,
        num_hidden_layers: int = 2,
        num_attention_heads: int = 4,
        intermediate_size: int = 37,
        hidden_dropout_prob: float = 0.1,
        attention_dropout: float = 0.1,
        is_training: bool = True,
    ):
        self.parent = parent
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.encoder_seq_length = seq_length
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_dropout = attention_dropout
        self.is_training = is_training

    def get_config(self) -> TCAConfig:
        return TCAConfig(
            input_size=self.input_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            hidden_dropout_prob=self.hidden_dropout_prob,
            attention_dropout=self.attention_dropout,
        )

    def prepare_config_and_inputs(self):
        frame_features = suite.floats_tensor([self.batch_size, self.seq_length, self.input_size])
        # Ragged videos: every video keeps its first frame, later frames may be padding.
        attention_mask = suite.random_attention_mask([self.batch_size, self.seq_length])
        return self.get_config(), frame_features, attention_mask

    def create_and_check_model(self, config, frame_features, attention_mask):
        model = TCAModel(config).to(frame_features.device).eval()
        with torch.no_grad():
            output = model(frame_features, attention_mask=attention_mask)
        batch, frames, hidden = self.batch_size, self.seq_length, self.hidden_size
        self.parent.assertEqual(output.last_hidden_state.shape, (batch, frames, hidden))
        self.parent.assertEqual(output.frame_embeds.shape, (batch, frames, hidden))
        self.parent.assertEqual(output.video_embeds.shape, (batch, hidden))

    def prepare_config_and_inputs_for_common(self):
        config, frame_features, attention_mask = self.prepare_config_and_inputs()
        return config, {"frame_features": frame_features, "attention_mask": attention_mask}


class TCAModelTest(suite.ModelTesterMixin, unittest.TestCase):
    all_model_classes = (TCAModel,)
    test_resize_embeddings = False  # TCA has no token embeddings
    test_torch_exportable = False  # export tests are not part of the fetched suite (stand-in mixin)
    has_attentions = True
    test_can_init_all_missing_weights_before_2023 = True  # run the `_init_weights` coverage check
    # The common shape check finds the batch size via `pixel_values(_videos)`; TCA's input is
    # `frame_features`, so TCA's own `test_get_video_features_shapes` below checks the shapes instead.
    skip_test_video_features_output_shape = True

    def setUp(self):
        self.model_tester = TCAModelTester(self)
        self.config_tester = suite.ConfigTester(
            self, config_class=TCAConfig, has_text_modality=False, hidden_size=32, num_attention_heads=4
        )

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_model(self):
        self.model_tester.create_and_check_model(*self.model_tester.prepare_config_and_inputs())

    def _video_features_prepare_config_and_inputs(self):
        # The common helper keeps only keys containing "video"; TCA's video input is `frame_features`.
        return self.model_tester.prepare_config_and_inputs_for_common()

    def test_get_video_features_shapes(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        model = TCAModel(config).eval()
        with torch.no_grad():
            features = model.get_video_features(**inputs)
            reference = model(**inputs)
        tester = self.model_tester
        self.assertEqual(
            features.last_hidden_state.shape, (tester.batch_size, tester.seq_length, tester.hidden_size)
        )
        torch.testing.assert_close(features.pooler_output, reference.video_embeds, rtol=0, atol=0)


# Common tests that do not apply to TCA, each with the reason. (Tests gated by hardware — accelerator,
# several GPUs, deepspeed, MPS, the kernels library — are left to their own decorators so that they run
# where the hardware exists.)
_NO_FLASH = "TCA does not support flash attention (_supports_flash_attn = False)"
_NO_TOKENS = "TCA has no token embeddings to resize (inputs are frame descriptors)"
_NO_ROPE = "TCA has no positional encoding (METHODS.md §1.2), so no RoPE"
_NOT_COMPOSITE = "TCA is a single model, not a composite with sub-configs"
_NO_LM = "TCA has no language-modelling head or loss"
_NO_MOE = "TCA has no mixture-of-experts layers"
_NO_TP = "TCA defines no tensor-parallel plan"
NOT_APPLICABLE = {
    "test_attn_implementation_composite_models": _NOT_COMPOSITE,
    "test_can_set_attention_dynamically_composite_model": _NOT_COMPOSITE,
    "test_sdpa_can_dispatch_composite_models": _NOT_COMPOSITE,
    "test_internal_model_config_and_subconfig_are_same": _NOT_COMPOSITE,
    "test_causal_lm_loss_honors_shift_labels": _NO_LM,
    "test_encoder_decoder_loss_no_double_shift": _NO_LM,
    "test_enable_input_require_grads_with_gradient_checkpointing": "TCA has no input embeddings and no loss",
    "test_inputs_embeds": "TCA has no input embeddings: `frame_features` are its inputs",
    "test_eager_matches_batched_and_grouped_inference_0_fp16": _NO_MOE,
    "test_eager_matches_batched_and_grouped_inference_1_fp32": _NO_MOE,
    "test_eager_matches_batched_and_grouped_inference_2_bf16": _NO_MOE,
    "test_moe_models_record_router_logits": _NO_MOE,
    "test_output_router_logits_from_config": _NO_MOE,
    "test_keep_in_fp32_modules": "TCA keeps no module in fp32 (no _keep_in_fp32_modules)",
    "test_keep_in_fp32_modules_exist": "TCA keeps no module in fp32 (no _keep_in_fp32_modules)",
    "test_reverse_loading_mapping": "TCA has no checkpoint key-conversion mapping",
    "test_can_load_from_already_mapped_keys": "TCA has no checkpoint key-conversion mapping",
    "test_sliding_window_mask": "TCA attends to all frames (no sliding window)",
    "test_tp_plan_matches_params": _NO_TP,
    "test_tied_head_has_a_tp_plan_entry": _NO_TP,
    "test_flex_attention_with_grads": "TCA does not support flex attention (_supports_flex_attn = False)",
    "test_flash_attn_2_can_compile_with_attention_mask_None_without_graph_break": _NO_FLASH,
    "test_flash_attn_2_can_dispatch_composite_models": _NO_FLASH,
    "test_flash_attn_2_fp32_ln": _NO_FLASH,
    "test_flash_attn_2_from_config": _NO_FLASH,
    "test_flash_attn_2_inference_equivalence": _NO_FLASH,
    "test_flash_attn_2_inference_equivalence_right_padding": _NO_FLASH,
    "test_flash_attn_3_can_dispatch_composite_models": _NO_FLASH,
    "test_flash_attn_3_from_config": _NO_FLASH,
    "test_flash_attn_3_inference_equivalence": _NO_FLASH,
    "test_flash_attn_3_inference_equivalence_right_padding": _NO_FLASH,
    "test_flash_attn_4_can_dispatch_composite_models": _NO_FLASH,
    "test_flash_attn_4_from_config": _NO_FLASH,
    "test_flash_attn_4_inference_equivalence": _NO_FLASH,
    "test_flash_attn_4_inference_equivalence_right_padding": _NO_FLASH,
    "test_flash_attn_kernels_inference_equivalence": _NO_FLASH,
    "test_flash_attn_kernels_mps_inference_equivalence": _NO_FLASH,
    "test_sdpa_can_dispatch_on_flash": _NO_FLASH,
    "test_model_rope_scaling_frequencies": _NO_ROPE,
    "test_model_rope_scaling_from_config_0_linear": _NO_ROPE,
    "test_model_rope_scaling_from_config_1_dynamic": _NO_ROPE,
    "test_model_rope_scaling_from_config_2_yarn": _NO_ROPE,
    "test_model_rope_with_partial_rotation": _NO_ROPE,
    "test_vision_axial_rope": _NO_ROPE,
    "test_resize_position_vector_embeddings": "TCA has no position embeddings",
    "test_resize_embeddings_untied": _NO_TOKENS,
    "test_resize_embeddings_untied_no_reinit_on_post_init": _NO_TOKENS,
    "test_resize_embeddings_untied_with_deepspeed": _NO_TOKENS,
    "test_resize_embeddings_untied_with_deepspeed_multi_gpu": _NO_TOKENS,
    "test_resize_tokens_embeddings": _NO_TOKENS,
    "test_resize_tokens_embeddings_with_deepspeed": _NO_TOKENS,
    "test_resize_tokens_embeddings_with_deepspeed_multi_gpu": _NO_TOKENS,
    "test_model_get_set_embeddings": "TCA has no input embeddings: its inputs are frame descriptors, not tokens",
    "test_training": "TCAModel is a base model without a loss (the training losses live in vidtempo.training)",
    "test_training_gradient_checkpointing": "needs a loss; TCA's gradient-checkpointing gradients are checked in tests/modeling/test_tca_model.py",
    "test_training_gradient_checkpointing_use_reentrant_false": "needs a loss; TCA's gradient-checkpointing gradients are checked in tests/modeling/test_tca_model.py",
    "test_training_gradient_checkpointing_use_reentrant_true": "needs a loss; TCA's gradient-checkpointing gradients are checked in tests/modeling/test_tca_model.py",
}


skip_not_applicable(TCAModelTest, NOT_APPLICABLE)


# ------------------------------------------------------------------------------------------------------------
# The ablation's aggregators (TCAConfig.aggregator): the same suite, on a tiny model of each kind.


class TCAAggregatorModelTester(TCAModelTester):
    """`TCAModelTester` for a non-Transformer aggregator (`netvlad` gives video embeddings only)."""

    def __init__(self, parent, aggregator: str, **kwargs):
        super().__init__(parent, **kwargs)
        self.aggregator = aggregator

    def get_config(self) -> TCAConfig:
        config = super().get_config()
        config.aggregator = self.aggregator
        config.netvlad_clusters = 5
        return config

    def create_and_check_model(self, config, frame_features, attention_mask):
        model = TCAModel(config).to(frame_features.device).eval()
        with torch.no_grad():
            output = model(frame_features, attention_mask=attention_mask)
        batch, frames, hidden = self.batch_size, self.seq_length, self.hidden_size
        self.parent.assertEqual(output.video_embeds.shape, (batch, hidden))
        if self.aggregator == "netvlad":
            self.parent.assertIsNone(output.frame_embeds)
        else:
            self.parent.assertEqual(output.frame_embeds.shape, (batch, frames, hidden))


class _AggregatorTest(TCAModelTest):
    aggregator = ""
    has_attentions = False  # only the Transformer has attention maps

    def setUp(self):
        self.model_tester = TCAAggregatorModelTester(self, self.aggregator)
        self.config_tester = suite.ConfigTester(
            self, config_class=TCAConfig, has_text_modality=False, hidden_size=32, num_attention_heads=4,
            aggregator=self.aggregator,
        )  # fmt: skip

    def test_get_video_features_shapes(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        model = TCAModel(config).eval()
        with torch.no_grad():
            features = model.get_video_features(**inputs)
            reference = model(**inputs)
        self.assertEqual(
            features.pooler_output.shape, (self.model_tester.batch_size, self.model_tester.hidden_size)
        )
        torch.testing.assert_close(features.pooler_output, reference.video_embeds, rtol=0, atol=0)


class TCALSTMModelTest(_AggregatorTest):
    aggregator = "lstm"


class TCAGRUModelTest(_AggregatorTest):
    aggregator = "gru"


class TCANetVLADModelTest(_AggregatorTest):
    aggregator = "netvlad"


skip_not_applicable(
    TCANetVLADModelTest,
    dict.fromkeys(
        [
            "test_hidden_states_output",
            "test_retain_grad_hidden_states_attentions",
            "test_get_video_features_hidden_states",
        ],
        "NetVLAD pools the frames in one step: it has no per-layer frame hidden states",
    ),
)


del _AggregatorTest  # not a test case of its own (it would rerun the Transformer's)
