"""Flax BERT's own checks: problem types, head masks, cross-attention, checkpoint prefixes, untied decoder,
errors and dropout. Outputs, losses, gradients, saving and decoding of every head are in test_encoders.py."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close

from flaxformers.checkpoints.convert import flatten, flax_to_state_dict
from flaxformers.models import bert as fb

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, type_vocab_size=2, hidden_dropout_prob=0.1,
            attention_probs_dropout_prob=0.1)
B, T = 2, 7

# name -> (torch class, flax class, config overrides, output fields compared)
HEADS = {
    "model": ("BertModel", "FlaxBertModel", {}, ("last_hidden_state", "pooler_output")),
    "pretraining": ("BertForPreTraining", "FlaxBertForPreTraining", {},
                    ("prediction_logits", "seq_relationship_logits")),
    "masked_lm": ("BertForMaskedLM", "FlaxBertForMaskedLM", {}, ("logits",)),
    "nsp": ("BertForNextSentencePrediction", "FlaxBertForNextSentencePrediction", {}, ("logits",)),
    "seq_cls": ("BertForSequenceClassification", "FlaxBertForSequenceClassification",
                {"num_labels": 3, "problem_type": "single_label_classification"}, ("logits",)),
    "multiple_choice": ("BertForMultipleChoice", "FlaxBertForMultipleChoice", {}, ("logits",)),
    "token_cls": ("BertForTokenClassification", "FlaxBertForTokenClassification", {"num_labels": 5},
                  ("logits",)),
    "qa": ("BertForQuestionAnswering", "FlaxBertForQuestionAnswering", {}, ("start_logits", "end_logits")),
    "causal_lm": ("BertLMHeadModel", "FlaxBertForCausalLM", {"is_decoder": True}, ("logits",)),
}


def _save_reference(tmp_path_factory, torch_cls: str, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    config = transformers.BertConfig(**{**TINY, **overrides})
    config._attn_implementation = "eager"
    model = getattr(transformers, torch_cls)(config).eval()
    path = tmp_path_factory.mktemp(torch_cls)
    model.save_pretrained(path)
    return model, str(path)


def _inputs(name: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Ids, a right-padded mask and two segments; [1, B, T] for multiple choice (B choices), so every
    head runs the encoder on [B, T] and the eager op cache is shared."""
    rng = np.random.RandomState(seed)
    shape = (1, B, T) if name == "multiple_choice" else (B, T)
    ids = rng.randint(1, TINY["vocab_size"], shape).astype(np.int32)
    mask = np.ones(shape, np.int32)
    mask[..., 1, T - 2:] = 0
    types = np.zeros(shape, np.int32)
    types[..., T // 2:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _torch_inputs(inputs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v, dtype=torch.long) for k, v in inputs.items()}


@pytest.fixture(scope="module", params=list(HEADS))
def head(request, tmp_path_factory):
    torch_cls, flax_cls, overrides, fields = HEADS[request.param]
    ref, path = _save_reference(tmp_path_factory, torch_cls, **overrides)
    ours = getattr(fb, flax_cls).from_pretrained(path)
    return request.param, ref, ours, fields


# --- heads' own options ---------------------------------------------------------------------------
@pytest.mark.parametrize("problem_type,num_labels", [
    ("regression", 1), ("single_label_classification", 4), ("multi_label_classification", 6),
])
def test_sequence_classification_problem_types(tmp_path_factory, problem_type, num_labels):
    ref, path = _save_reference(tmp_path_factory, "BertForSequenceClassification", seed=2,
                                problem_type=problem_type, num_labels=num_labels)
    ours = fb.FlaxBertForSequenceClassification.from_pretrained(path)
    assert ours.config.problem_type == problem_type and ours.config.num_labels == num_labels
    inputs = _inputs("seq_cls", seed=3)
    with torch.no_grad():
        expected = ref(**_torch_inputs(inputs)).logits
    assert_close(ours(**inputs).logits, expected, what=problem_type)


def _scale_value_heads(attention: torch.nn.Module, mask: np.ndarray, n: int) -> None:
    """Scaling head h's attention weights by m equals scaling its value projection by m."""
    head_dim = attention.value.weight.shape[0] // n
    scale = torch.tensor(np.repeat(mask, head_dim), dtype=torch.float32)
    with torch.no_grad():
        attention.value.weight.mul_(scale[:, None])
        attention.value.bias.mul_(scale)


def test_head_mask_matches_scaled_values(tmp_path_factory):
    """transformers 5 dropped head_mask; the reference is the same model with each head's values scaled."""
    ref, path = _save_reference(tmp_path_factory, "BertModel", seed=4)
    ours = fb.FlaxBertModel.from_pretrained(path)
    head_mask = np.array([[1.0, 0.0, 0.5, 1.0], [0.0, 1.0, 1.0, 0.25]], np.float32)
    for i, layer in enumerate(ref.encoder.layer):
        _scale_value_heads(layer.attention.self, head_mask[i], TINY["num_attention_heads"])
    inputs = _inputs("model", seed=5)
    with torch.no_grad():
        expected = ref(**_torch_inputs(inputs), output_attentions=True)
    out = ours(**inputs, head_mask=head_mask, output_attentions=True)
    assert_close(out.last_hidden_state, expected.last_hidden_state, what="head-masked hidden")
    for i, (a, b) in enumerate(zip(out.attentions, expected.attentions)):
        assert_close(a, b.numpy() * head_mask[i][None, :, None, None], what=f"head-masked attentions[{i}]")
    # A single [N] mask applies to every layer; a wrong shape is a clear error.
    one = ours(**inputs, head_mask=head_mask[0]).last_hidden_state
    both = ours(**inputs, head_mask=np.stack([head_mask[0]] * 2)).last_hidden_state
    np.testing.assert_array_equal(one, both)
    with pytest.raises(ValueError, match="head_mask has shape"):
        ours(**inputs, head_mask=np.ones((3, 4)))


@pytest.fixture(scope="module")
def cross(tmp_path_factory):
    ref, path = _save_reference(tmp_path_factory, "BertLMHeadModel", seed=6, is_decoder=True,
                                add_cross_attention=True)
    return ref, fb.FlaxBertForCausalLM.from_pretrained(path), path


def _encoder_states(seed=8):
    rng = np.random.RandomState(seed)
    enc = rng.randn(B, 5, TINY["hidden_size"]).astype(np.float32)
    enc_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.int32)
    return enc, enc_mask


def test_cross_attention_with_head_mask_matches(cross):
    ref, ours, _ = cross
    inputs = _inputs("causal_lm", seed=9)
    enc, enc_mask = _encoder_states()
    head_mask = np.array([[1.0, 0.5, 0.0, 1.0], [1.0, 1.0, 0.75, 0.0]], np.float32)
    with torch.no_grad():
        plain = ref(**_torch_inputs(inputs), encoder_hidden_states=torch.tensor(enc),
                    encoder_attention_mask=torch.tensor(enc_mask), output_attentions=True)
    out = ours(**inputs, encoder_hidden_states=enc, encoder_attention_mask=enc_mask, output_attentions=True)
    assert_close(out.logits, plain.logits, what="cross-attention logits")
    for i, (a, b) in enumerate(zip(out.cross_attentions, plain.cross_attentions)):
        assert_close(a, b, what=f"cross_attentions[{i}]")
    # transformers 4.x Flax applies each layer's head mask to its self- and cross-attention.
    masked = type(ref)(ref.config).eval()
    masked.load_state_dict(ref.state_dict())
    for i, layer in enumerate(masked.bert.encoder.layer):
        _scale_value_heads(layer.attention.self, head_mask[i], TINY["num_attention_heads"])
        _scale_value_heads(layer.crossattention.self, head_mask[i], TINY["num_attention_heads"])
    with torch.no_grad():
        expected = masked(**_torch_inputs(inputs), encoder_hidden_states=torch.tensor(enc),
                          encoder_attention_mask=torch.tensor(enc_mask)).logits
    out = ours(**inputs, encoder_hidden_states=enc, encoder_attention_mask=enc_mask, head_mask=head_mask)
    assert_close(out.logits, expected, what="cross-attention + head_mask logits")


def test_cross_attention_gradients_with_remat_match(cross):
    ref, ours, _ = cross
    inputs = _inputs("causal_lm", seed=10)
    enc, enc_mask = _encoder_states(11)
    weights = np.random.RandomState(12).randn(B, T, TINY["vocab_size"]).astype(np.float32)
    remat = fb.FlaxBertForCausalLM(ours.config, _do_init=False, gradient_checkpointing=True)

    def loss(params, enc):
        out = remat(**inputs, encoder_hidden_states=enc, encoder_attention_mask=enc_mask, params=params)
        return (out.logits * weights).sum() / np.sqrt(weights.size)

    grads, enc_grad = jax.grad(loss, argnums=(0, 1))(ours.params, jnp.asarray(enc))
    enc_t = torch.tensor(enc, requires_grad=True)
    ref.zero_grad()
    out = ref(**_torch_inputs(inputs), encoder_hidden_states=enc_t, encoder_attention_mask=torch.tensor(enc_mask))
    ((out.logits * torch.tensor(weights)).sum() / np.sqrt(weights.size)).backward()
    assert_close(enc_grad, enc_t.grad, what="d loss / d encoder_hidden_states")
    ours_grads = flax_to_state_dict(flatten(grads), ours._conversion_rules(ours.config))
    for n, p in ref.named_parameters():
        assert_close(ours_grads[n], p.grad, what=f"grad {n}")


def test_cross_attention_needs_config(head):
    name, _, ours, _ = head
    enc = np.zeros((B, 3, TINY["hidden_size"]), np.float32)
    with pytest.raises(ValueError, match="add_cross_attention|takes no encoder_hidden_states"):
        ours(**_inputs(name), encoder_hidden_states=enc)


# --- decoding -------------------------------------------------------------------------------------
def test_cached_decoding_equals_full_forward(cross):
    _, ours, _ = cross
    inputs = _inputs("causal_lm", seed=13)
    ids, types = inputs["input_ids"], inputs["token_type_ids"]
    enc, enc_mask = _encoder_states(14)
    full = np.asarray(ours(ids, token_type_ids=types, encoder_hidden_states=enc,
                           encoder_attention_mask=enc_mask).logits)
    max_len, prompt = 10, 3
    cache = ours.init_cache(B, max_len)
    assert cache["bert"]["encoder"]["layer"]["0"]["attention"]["self"]["cached_key"].shape == (B, max_len, 4, 8)
    mask = np.ones((B, max_len), np.int32)

    @jax.jit  # one compile per input length instead of one per op and shape
    def step(params, cache, ids, types, positions):
        out = ours(ids, attention_mask=mask, token_type_ids=types, position_ids=positions, params=params,
                   past_key_values=cache, encoder_hidden_states=enc, encoder_attention_mask=enc_mask)
        return out.logits, out.past_key_values

    logits, cache = step(ours.params, cache, ids[:, :prompt], types[:, :prompt],
                         np.broadcast_to(np.arange(prompt), (B, prompt)))
    steps = [np.asarray(logits)]
    for t in range(prompt, T):
        logits, cache = step(ours.params, cache, ids[:, t:t + 1], types[:, t:t + 1], np.full((B, 1), t))
        steps.append(np.asarray(logits))
    assert_close(np.concatenate(steps, axis=1), full, what="cached vs full")
    assert int(cache["bert"]["encoder"]["layer"]["1"]["attention"]["self"]["cache_index"]) == T


# --- checkpoints ----------------------------------------------------------------------------------
def test_base_and_head_checkpoints_load_both_ways(tmp_path_factory):
    """Head checkpoint (with `bert.`) -> base model; base checkpoint (without) -> heads; tied decoder."""
    ref, path = _save_reference(tmp_path_factory, "BertForPreTraining", seed=15)
    inputs = _inputs("model", seed=16)
    t_inputs = _torch_inputs(inputs)
    base = fb.FlaxBertModel.from_pretrained(path)
    assert not base.loading_report.missing
    with torch.no_grad():
        expected = ref(**t_inputs, output_hidden_states=True)
        base_out = ref.bert(**t_inputs)
    assert_close(base(**inputs).pooler_output, base_out.pooler_output, what="head ckpt -> base")
    mlm = fb.FlaxBertForMaskedLM.from_pretrained(path)
    assert not mlm.loading_report.missing
    assert set(mlm.loading_report.unexpected) == {"cls.seq_relationship.weight", "cls.seq_relationship.bias"}
    assert_close(mlm(**inputs).logits, expected.prediction_logits, what="pretraining ckpt -> MLM")
    nsp = fb.FlaxBertForNextSentencePrediction.from_pretrained(path)
    assert not nsp.loading_report.missing
    assert_close(nsp(**inputs).logits, expected.seq_relationship_logits, what="pretraining ckpt -> NSP")

    base_dir = tmp_path_factory.mktemp("base_ckpt")
    ref.bert.save_pretrained(base_dir)  # names without the `bert.` prefix
    pre, params = fb.FlaxBertForPreTraining.from_pretrained(base_dir, _do_init=False)
    missing = set(pre.loading_report.missing)
    assert missing == {"cls/predictions/transform/dense/kernel", "cls/predictions/transform/dense/bias",
                       "cls/predictions/transform/LayerNorm/scale", "cls/predictions/transform/LayerNorm/bias",
                       "cls/predictions/bias", "cls/seq_relationship/kernel", "cls/seq_relationship/bias"}, missing
    np.testing.assert_array_equal(params["bert"]["pooler"]["dense"]["kernel"],
                                  base.params["pooler"]["dense"]["kernel"])


def test_untied_decoder(tmp_path_factory):
    ref, path = _save_reference(tmp_path_factory, "BertForMaskedLM", seed=18, tie_word_embeddings=False)
    ours = fb.FlaxBertForMaskedLM.from_pretrained(path)
    decoder = ours.params["cls"]["predictions"]["decoder"]["kernel"]
    assert decoder.shape == (TINY["hidden_size"], TINY["vocab_size"])
    assert np.abs(np.asarray(decoder).T - np.asarray(ours.params["bert"]["embeddings"]["word_embeddings"]
                                                    ["embedding"])).max() > 0
    inputs = _inputs("masked_lm", seed=19)
    with torch.no_grad():
        expected = ref(**_torch_inputs(inputs)).logits
    assert_close(ours(**inputs).logits, expected, what="untied MLM logits")


# --- errors and modes -----------------------------------------------------------------------------
def test_bad_inputs_get_clear_errors(head):
    name, _, ours, _ = head
    inputs = _inputs(name)
    with pytest.raises(ValueError, match="vocab_size=99"):
        ours(**{**inputs, "input_ids": inputs["input_ids"] + 99})
    with pytest.raises(ValueError, match="type_vocab_size=2"):
        ours(**{**inputs, "token_type_ids": inputs["token_type_ids"] * 2})


def test_dropout_in_train_mode(tmp_path_factory):
    """Dropout (embeddings, attention, outputs, classifier) acts with train=True, per dropout_rng."""
    _, path = _save_reference(tmp_path_factory, "BertForSequenceClassification", classifier_dropout=0.5)
    ours = fb.FlaxBertForSequenceClassification.from_pretrained(path)
    inputs = _inputs("seq_cls")
    a = ours(**inputs, train=True, dropout_rng=jax.random.PRNGKey(0)).logits
    b = ours(**inputs, train=True, dropout_rng=jax.random.PRNGKey(0)).logits
    c = ours(**inputs, train=True, dropout_rng=jax.random.PRNGKey(1)).logits
    np.testing.assert_array_equal(a, b)
    assert np.abs(np.asarray(a) - np.asarray(c)).max() > 0
    np.testing.assert_array_equal(ours(**inputs).logits, ours(**inputs, train=False).logits)


def test_config_errors():
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        fb.BertConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="position_embedding_type"):
        fb.BertConfig(position_embedding_type="relative_key")
