"""flaxformers.torch GPT-2 (all six heads) against transformers 5.x PyTorch GPT-2 on the same random weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from _helpers import assert_close

import flaxformers.torch as ft

ATOL = 1e-5  # fp32, same weights, same op order
TINY = dict(vocab_size=97, n_positions=48, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0,
            pad_token_id=1, num_labels=3)
HEADS = ["GPT2Model", "GPT2LMHeadModel", "GPT2DoubleHeadsModel", "GPT2ForSequenceClassification",
         "GPT2ForTokenClassification", "GPT2ForQuestionAnswering"]
IMPLS = ["eager", "sdpa"]
B, T = 2, 9

@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models: torch's thread pool costs more than it gives, badly so on a busy CI machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)



def _ids(shape, seed=0, low=2):
    return torch.from_numpy(np.random.RandomState(seed).randint(low, TINY["vocab_size"], shape)).long()


def _make_pair(head: str, directory, impl: str = "eager", seed: int = 0, **overrides):
    """A transformers model with random weights, saved, and ours loaded from the directory."""
    torch.manual_seed(seed)
    ref = getattr(transformers, head)(transformers.GPT2Config(**{**TINY, **overrides})).eval()
    ref.set_attn_implementation(impl)
    ref.save_pretrained(directory)
    ours = getattr(ft, head).from_pretrained(directory, attn_implementation=impl)
    return ref, ours


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return {h: _make_pair(h, tmp_path_factory.mktemp(h)) for h in HEADS}


def _set_impl(models, impl):
    for m in models:
        m.set_attn_implementation(impl)


def _inputs(head: str) -> dict:
    """Inputs with padding and labels (some out of range / ignored) for every head."""
    ids = _ids((B, T))
    mask = torch.ones(B, T, dtype=torch.long)
    mask[0, :3] = 0  # left padding in row 0
    if head == "GPT2DoubleHeadsModel":
        ids = _ids((B, 3, T), seed=1)
        return dict(input_ids=ids, mc_token_ids=torch.tensor([[8, 4, 0], [2, 8, 6]]), labels=ids,
                    mc_labels=torch.tensor([2, 0]))
    if head == "GPT2ForSequenceClassification":
        ids[0, 6:] = TINY["pad_token_id"]  # right padding: pooled on position 5
        return dict(input_ids=ids, labels=torch.tensor([2, 0]))
    inputs = dict(input_ids=ids, attention_mask=mask)
    if head == "GPT2LMHeadModel":
        labels = ids.clone()
        labels[0, :3] = -100
        inputs["labels"] = labels
    elif head == "GPT2ForTokenClassification":
        inputs["labels"] = torch.from_numpy(np.random.RandomState(2).randint(0, 3, (B, T))).long()
    elif head == "GPT2ForQuestionAnswering":
        inputs.update(start_positions=torch.tensor([3, 20]), end_positions=torch.tensor([[7], [5]]))
    return inputs


def _compare(ours, ref, what: str, atol: float = ATOL) -> float:
    """Every tensor field of two outputs (tuples, caches included) within atol; returns the max error."""
    if isinstance(ref, torch.Tensor):
        return assert_close(ours.detach(), ref.detach(), atol=atol, what=what)
    if hasattr(ref, "layers"):  # a transformers cache
        ref = tuple((layer.keys, layer.values) for layer in ref.layers)
        ours = tuple(ours)
    assert len(ours) == len(ref), f"{what}: {len(ours)} entries, reference {len(ref)}"
    return max([0.0] + [_compare(a, b, f"{what}[{i}]", atol) for i, (a, b) in enumerate(zip(ours, ref))])


@pytest.mark.parametrize("head", HEADS)
def test_state_dict_identical_and_strict_load_both_ways(pairs, head):
    ref, ours = pairs[head]
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert list(our_sd) == list(ref_sd)
    assert all(our_sd[k].shape == ref_sd[k].shape for k in ref_sd)
    ours.load_state_dict(ref_sd, strict=True)
    fresh = getattr(transformers, head)(ref.config).eval()
    fresh.load_state_dict(our_sd, strict=True)
    assert all(torch.equal(fresh.state_dict()[k], ref_sd[k]) for k in ref_sd)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("head", HEADS)
def test_every_head_matches(pairs, head, impl):
    ref, ours = pairs[head]
    _set_impl((ref, ours), impl)
    inputs = _inputs(head)
    attn = impl == "eager"  # transformers returns attention weights only from eager attention
    with torch.no_grad():
        expected = ref(**inputs, output_hidden_states=True, output_attentions=attn)
        out = ours(**inputs, output_hidden_states=True, output_attentions=attn)
    fields = [k for k in expected.keys() if k != "cross_attentions"]
    assert [k for k in out.keys()] == fields
    err = max(_compare(out[k], expected[k], f"{head}/{impl}/{k}") for k in fields)
    assert err <= ATOL
    if "loss" in fields:
        assert out.loss.ndim == 0
    as_tuple = ours(**inputs, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(ours(**inputs).to_tuple())


@pytest.mark.parametrize("problem,num_labels,labels", [
    ("regression", 1, torch.tensor([0.5, -1.0])),
    ("single_label_classification", 3, torch.tensor([1, 2])),
    ("multi_label_classification", 3, torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])),
])
def test_sequence_classification_problem_types(tmp_path, problem, num_labels, labels):
    ref, ours = _make_pair("GPT2ForSequenceClassification", tmp_path, num_labels=num_labels)
    ids = _ids((B, T))
    ids[1, :4] = TINY["pad_token_id"]  # left padding: still pooled on the last token
    ids[0, 7:] = TINY["pad_token_id"]
    with torch.no_grad():
        expected, out = ref(ids, labels=labels), ours(ids, labels=labels)
    assert ours.config.problem_type == ref.config.problem_type == problem
    assert_close(out.logits, expected.logits, ATOL, "pooled logits")
    assert_close(out.loss, expected.loss, ATOL, f"{problem} loss")
    # Without padding in inputs_embeds the last position is pooled, as in transformers.
    embeds = ref.transformer.wte(ids[:1]).detach()
    with torch.no_grad():
        assert_close(ours(inputs_embeds=embeds).logits, ref(inputs_embeds=embeds).logits, ATOL, "embeds")


def test_gradients_match_with_and_without_checkpointing(tmp_path):
    drop = dict(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    ref, ours = _make_pair("GPT2DoubleHeadsModel", tmp_path, summary_first_dropout=0.0, **drop)
    inputs = _inputs("GPT2DoubleHeadsModel")

    def grads(model):
        model.zero_grad()
        out = model(**inputs)
        (out.loss + out.mc_loss).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    ref.train()
    expected = grads(ref)
    ours.train()
    plain = grads(ours)
    ours.gradient_checkpointing_enable()
    assert ours.is_gradient_checkpointing
    checkpointed = grads(ours)
    ours.gradient_checkpointing_disable()
    assert set(plain) == set(expected)
    for name in expected:
        assert_close(plain[name], expected[name], ATOL, f"grad {name}")
        assert_close(checkpointed[name], expected[name], ATOL, f"checkpointed grad {name}")


@pytest.mark.parametrize("variant", [
    dict(scale_attn_weights=False, n_inner=40),
    dict(scale_attn_by_inverse_layer_idx=True, activation_function="gelu"),
    dict(reorder_and_upcast_attn=True),
    dict(tie_word_embeddings=False, activation_function="relu"),
])
def test_config_switches(tmp_path, variant):
    ref, ours = _make_pair("GPT2LMHeadModel", tmp_path, **variant)
    inputs = _inputs("GPT2LMHeadModel")
    for impl in IMPLS:
        _set_impl((ref, ours), impl)
        with torch.no_grad():
            expected, out = ref(**inputs), ours(**inputs)
        assert_close(out.logits, expected.logits, ATOL, f"{variant} {impl} logits")
        assert_close(out.loss, expected.loss, ATOL, f"{variant} {impl} loss")
    assert (ours.lm_head.weight is ours.transformer.wte.weight) == ref.config.tie_word_embeddings


def test_cross_attention_and_its_cache(tmp_path):
    ref, ours = _make_pair("GPT2LMHeadModel", tmp_path, add_cross_attention=True,
                           scale_attn_by_inverse_layer_idx=True)
    ids = _ids((B, 6))
    enc = torch.randn(B, 5, TINY["n_embd"], generator=torch.Generator().manual_seed(3))
    enc_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    kw = dict(encoder_hidden_states=enc, encoder_attention_mask=enc_mask)
    for impl in IMPLS:
        _set_impl((ref, ours), impl)
        with torch.no_grad():
            expected = ref(ids, **kw, output_attentions=impl == "eager")
            out = ours(ids, **kw, output_attentions=impl == "eager")
        assert_close(out.logits, expected.logits, ATOL, f"{impl} cross-attention logits")
        if impl == "eager":
            _compare(out.cross_attentions, expected.cross_attentions, "cross_attentions")
    with torch.no_grad():  # cross keys/values are computed once and kept in the cache
        first = ours(ids[:, :4], **kw)
        assert len(first.past_key_values.cross_layers) == TINY["n_layer"]
        step = ours(ids[:, 4:], past_key_values=first.past_key_values, **kw)
        full = ours(ids, **kw)
    assert_close(step.logits, full.logits[:, 4:], ATOL, "cached cross-attention")
    legacy = first.past_key_values.to_legacy_cache()
    assert all(len(layer) == 4 for layer in legacy)


@pytest.mark.parametrize("impl", IMPLS)
def test_kv_cache_matches_full_forward_and_transformers(pairs, impl):
    ref, ours = pairs["GPT2LMHeadModel"]
    _set_impl((ref, ours), impl)
    ids = _ids((B, T), seed=5)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, :2] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        full = ours(ids, attention_mask=mask, position_ids=positions).logits
        ref_cache = transformers.DynamicCache()
        out = ours(ids[:, :5], attention_mask=mask[:, :5], position_ids=positions[:, :5])
        ref_out = ref(ids[:, :5], attention_mask=mask[:, :5], position_ids=positions[:, :5],
                      past_key_values=ref_cache)
        steps, cache = [out.logits], out.past_key_values
        assert isinstance(cache, ft.DynamicCache)
        legacy = cache.to_legacy_cache()
        for t in range(5, T):
            kw = dict(attention_mask=mask[:, : t + 1], position_ids=positions[:, t : t + 1])
            out = ours(ids[:, t : t + 1], past_key_values=cache, **kw)
            assert out.past_key_values is cache  # a Cache object is updated in place and returned
            steps.append(out.logits)
            legacy_out = ours(ids[:, t : t + 1], past_key_values=legacy, **kw)
            assert isinstance(legacy_out.past_key_values, tuple)  # legacy tuples in, legacy tuples out
            assert_close(legacy_out.logits, out.logits, ATOL, "legacy-tuple step")
            legacy = legacy_out.past_key_values
            ref_out = ref(ids[:, t : t + 1], past_key_values=ref_cache, **kw)
        real = mask.bool()  # padded queries attend to nothing real; their outputs are arbitrary
        assert_close(torch.cat(steps, 1)[real], full[real], ATOL, "cached steps vs full forward")
        assert_close(steps[-1], ref_out.logits, ATOL, "last cached step vs transformers")
        _compare(cache, ref_cache, "cache contents")
        # transformers' own DynamicCache works as past_key_values, filled in place.
        foreign = transformers.DynamicCache()
        ours(ids[:, :5], attention_mask=mask[:, :5], position_ids=positions[:, :5], past_key_values=foreign)
        step = ours(ids[:, 5:6], attention_mask=mask[:, :6], position_ids=positions[:, 5:6], past_key_values=foreign)
        assert step.past_key_values is foreign and foreign.get_seq_length() == 6
        assert_close(step.logits, full[:, 5:6], ATOL, "transformers DynamicCache step")


def test_mismatched_past_key_values_errors(pairs):
    _, ours = pairs["GPT2LMHeadModel"]
    ids = _ids((B, 4))
    with torch.no_grad():
        cache = ours(ids).past_key_values
        legacy = cache.to_legacy_cache()
        with pytest.raises(ValueError, match="1 layers but the model has n_layer=2"):
            ours(ids[:, :1], past_key_values=legacy[:1])
        with pytest.raises(ValueError, match="batch size 2"):
            ours(ids[:1, :1], past_key_values=cache)
        bad_heads = tuple((k[:, :3], v[:, :3]) for k, v in legacy)
        with pytest.raises(ValueError, match="heads=4"):
            ours(ids[:, :1], past_key_values=bad_heads)
        with pytest.raises(ValueError, match=r"\(key, value\)"):
            ours(ids[:, :1], past_key_values=tuple((k,) for k, _ in legacy))
        with pytest.raises(ValueError, match="mask of length 5"):
            ours(ids[:, :1], past_key_values=legacy, attention_mask=torch.ones(B, 1))
        with pytest.raises(TypeError, match="past_key_values must be a Cache"):
            ours(ids[:, :1], past_key_values="cache")
        with pytest.raises(ValueError, match="exceed n_positions=48"):
            ours(_ids((B, 45)), past_key_values=legacy)


def test_pruning_equals_zeroed_heads_in_transformers(tmp_path):
    """A pruned head contributes nothing: transformers with that head's c_proj input rows zeroed is the reference."""
    ref, ours = _make_pair("GPT2LMHeadModel", tmp_path / "ref")
    heads = {0: [1, 3], 1: [2]}
    ours.prune_heads(heads)
    ours.prune_heads({0: [0]})  # numbered as in the unpruned model: layer 0 keeps head 2 only
    head_dim = TINY["n_embd"] // TINY["n_head"]
    with torch.no_grad():
        for layer, pruned in {0: [0, 1, 3], 1: [2]}.items():
            for h in pruned:
                ref.transformer.h[layer].attn.c_proj.weight[h * head_dim : (h + 1) * head_dim] = 0
    sd = ours.state_dict()
    assert sd["transformer.h.0.attn.c_attn.weight"].shape == (32, 3 * head_dim)
    assert sd["transformer.h.1.attn.c_proj.weight"].shape == (3 * head_dim, 32)
    assert ours.config.pruned_heads == {0: [0, 1, 3], 1: [2]}
    inputs = _inputs("GPT2LMHeadModel")
    for impl in IMPLS:
        _set_impl((ref, ours), impl)
        with torch.no_grad():
            assert_close(ours(**inputs).logits, ref(**inputs).logits, ATOL, f"pruned {impl}")
    ours.save_pretrained(tmp_path / "pruned")  # config.pruned_heads rebuilds the shapes on load
    reloaded = ft.GPT2LMHeadModel.from_pretrained(tmp_path / "pruned")
    with torch.no_grad():
        assert_close(reloaded(**inputs).logits, ref(**inputs).logits, ATOL, "pruned, saved and reloaded")
    with pytest.raises(ValueError, match=r"not in \[0, 4\)"):
        ours.prune_heads({1: [4]})


def test_head_mask_equals_scaled_heads_in_transformers(tmp_path):
    ref, ours = _make_pair("GPT2LMHeadModel", tmp_path, impl="sdpa")
    ref.set_attn_implementation("eager")  # ours falls back to eager for head_mask: same padded-row outputs
    head_mask = torch.tensor([[1.0, 0.0, 0.5, 1.0], [0.25, 1.0, 1.0, 0.0]])
    head_dim = TINY["n_embd"] // TINY["n_head"]
    with torch.no_grad():
        for layer in range(2):
            rows = head_mask[layer].repeat_interleave(head_dim)[:, None]
            ref.transformer.h[layer].attn.c_proj.weight.mul_(rows)
        inputs = _inputs("GPT2LMHeadModel")
        assert_close(ours(**inputs, head_mask=head_mask).logits, ref(**inputs).logits, ATOL, "head_mask")
    with pytest.raises(ValueError, match="head_mask must be"):
        ours(**inputs, head_mask=torch.ones(3, 4))


def test_bad_inputs_give_clear_errors(pairs, tmp_path):
    _, double = pairs["GPT2DoubleHeadsModel"]
    ids = _ids((1, 2, 5))
    with pytest.raises(ValueError, match=r"mc_token_ids must index tokens in \[0, 4\]"):
        double(ids, mc_token_ids=torch.tensor([[1, 5]]))
    with pytest.raises(ValueError, match=r"mc_token_ids must index"):
        double(ids, mc_token_ids=torch.tensor([[-1, 0]]))
    _, ours = _make_pair("GPT2ForSequenceClassification", tmp_path, pad_token_id=None)
    assert ours(_ids((1, 5))).logits.shape == (1, 3)
    with pytest.raises(ValueError, match="needs config.pad_token_id"):
        ours(_ids((2, 5)))
    _, lm = pairs["GPT2LMHeadModel"]
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, 97\)"):
        lm(torch.tensor([[1, 97]]))
    with pytest.raises(ValueError, match="exactly one of input_ids and inputs_embeds"):
        lm()
    with pytest.raises(TypeError, match="unexpected keyword arguments"):
        lm(_ids((1, 3)), not_an_argument=1)
    with pytest.raises(ValueError, match="attn_implementation='flash_attention_2' is not supported"):
        ft.GPT2Model(ours.config, attn_implementation="flash_attention_2")
    with pytest.raises(ValueError, match="add_cross_attention"):
        lm(_ids((1, 3)), encoder_hidden_states=torch.zeros(1, 2, TINY["n_embd"]))


def test_checkpoints_load_in_transformers_and_across_heads(pairs, tmp_path):
    ref, ours = pairs["GPT2LMHeadModel"]
    _set_impl((ref, ours), "sdpa")  # what transformers' from_pretrained picks: same padded-row outputs
    inputs = _inputs("GPT2LMHeadModel")
    for kwargs in (dict(), dict(max_shard_size="20KB"), dict(safe_serialization=False)):
        directory = tmp_path / str(len(kwargs) and list(kwargs)[0])
        ours.save_pretrained(directory, **kwargs)
        back, info = transformers.GPT2LMHeadModel.from_pretrained(directory, output_loading_info=True)
        assert not any(info.values()), info
        again = ft.GPT2LMHeadModel.from_pretrained(directory)
        with torch.no_grad():
            expected = ref(**inputs).logits
            assert_close(back.eval()(**inputs).logits, expected, ATOL, f"transformers reload {kwargs}")
            assert_close(again(**inputs).logits, expected, ATOL, f"our reload {kwargs}")
    # A head checkpoint into the base model (prefix stripped), and a base checkpoint into a head.
    base = ft.GPT2Model.from_pretrained(tmp_path / "0")
    ref.transformer.save_pretrained(tmp_path / "base")
    head, info = ft.GPT2ForTokenClassification.from_pretrained(tmp_path / "base", output_loading_info=True)
    assert info["missing_keys"] == ["classifier.weight", "classifier.bias"] and not info["unexpected_keys"]
    with torch.no_grad():
        assert_close(base(inputs["input_ids"]).last_hidden_state,
                     ref.transformer(inputs["input_ids"]).last_hidden_state, ATOL, "base model")
        assert torch.equal(head.transformer.wte.weight, ref.transformer.wte.weight)
    # Old checkpoints carry causal-mask buffers: ignored, not reported.
    from flaxformers.checkpoints import io

    old = {k: v.numpy() for k, v in ref.state_dict().items() if k != "lm_head.weight"}
    old["transformer.h.0.attn.bias"] = np.tril(np.ones((1, 1, 48, 48), bool))
    old["transformer.h.0.attn.masked_bias"] = np.array(-1e4, np.float32)
    io.write_state_dict(old, tmp_path / "old")
    ours.config.save_pretrained(tmp_path / "old")
    _, info = ft.GPT2LMHeadModel.from_pretrained(tmp_path / "old", output_loading_info=True)
    assert not any(info.values()), info
    bf16 = ft.GPT2LMHeadModel.from_pretrained(tmp_path / "0", dtype=torch.bfloat16)
    assert bf16.dtype == torch.bfloat16 and bf16.lm_head.weight is bf16.transformer.wte.weight


def test_resize_token_embeddings_keeps_rows_and_tying(pairs):
    ref, _ = pairs["GPT2DoubleHeadsModel"]
    ours = ft.GPT2DoubleHeadsModel(ft.GPT2Config(**{**TINY, "num_labels": 1})).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    ours.resize_token_embeddings(TINY["vocab_size"] + 3)
    assert ours.config.vocab_size == 100 and ours.lm_head.weight is ours.transformer.wte.weight
    assert torch.equal(ours.transformer.wte.weight[:97], ref.transformer.wte.weight)
    with torch.no_grad():
        out = ours(torch.tensor([[[5, 99, 98]]]))
    assert out.logits.shape == (1, 1, 3, 100) and out.mc_logits.shape == (1, 1)
