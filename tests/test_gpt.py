"""GPT: the decoder block, the KV cache, generation, presets and their parameter counts."""

import pytest
import torch

from vitcourse.layers import (
    DecoderBlock,
    DecoderCache,
    KVCache,
    MultiHeadAttention,
    causal_mask,
)
from vitcourse.models import (
    GPT,
    GPTConfig,
    count_parameters,
    create_model,
    get_config,
    list_models,
    lm_loss,
)
from vitcourse.models.gpt import sample_next_token


def tiny(**overrides) -> GPTConfig:
    """Odd sizes so shape bugs can't hide: V=37, k=13, D=36, 3 heads, MLP 37."""
    fields = {
        "vocab_size": 37,
        "max_seq_len": 13,
        "embed_dim": 36,
        "depth": 2,
        "num_heads": 3,
        "mlp_ratio": 37 / 36,
        "dropout": 0.0,
        "attn_dropout": 0.0,
    }
    return GPTConfig(**{**fields, **overrides})


def test_causal_mask_with_past_tokens():
    mask = causal_mask(3, num_past=2)
    assert mask.shape == (3, 5)
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]


@pytest.mark.parametrize("return_attention", [False, True])
def test_attention_with_a_cache_equals_full_causal_attention(return_attention):
    mha = MultiHeadAttention(36, 3).eval()
    x = torch.randn(2, 7, 36)
    full = mha(x, causal=True)
    torch.testing.assert_close(full, mha(x, mask=causal_mask(7)), rtol=1e-5, atol=1e-5)
    cache = KVCache()
    pieces = [
        x[:, :3],
        x[:, 3:4],
        x[:, 4:6],
        x[:, 6:],
    ]  # a prompt, then steps of 1 and 2 tokens
    outs = [
        mha(p, causal=True, cache=cache, return_attention=return_attention)
        for p in pieces
    ]
    outs = [o[0] if return_attention else o for o in outs]
    assert len(cache) == 7
    torch.testing.assert_close(torch.cat(outs, dim=1), full, rtol=1e-5, atol=1e-5)


def test_cross_attention_cache_is_filled_once():
    mha = MultiHeadAttention(36, 3).eval()
    x, context = torch.randn(2, 4, 36), torch.randn(2, 9, 36)
    cache = KVCache()
    first = mha(x[:, :2], context=context, cache=cache)
    k = cache.k
    second = mha(x[:, 2:], context=context, cache=cache)
    assert cache.k is k and len(cache) == 9
    torch.testing.assert_close(
        torch.cat([first, second], 1), mha(x, context=context), rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match="self-attention"):
        mha(x, context=context, causal=True)


@pytest.mark.parametrize(
    "norm_first,norm", [(True, "layernorm"), (False, "layernorm"), (True, "rmsnorm")]
)
def test_decoder_block_with_cross_attention_cached_equals_uncached(norm_first, norm):
    block = DecoderBlock(
        36, 3, mlp_ratio=37 / 36, cross_attention=True, norm_first=norm_first, norm=norm
    ).eval()
    x, context = torch.randn(2, 6, 36), torch.randn(2, 5, 36)
    full, weights = block(x, context=context, return_attention=True)
    assert full.shape == (2, 6, 36) and weights.shape == (2, 3, 6, 6)
    assert torch.all(weights.triu(diagonal=1) == 0)
    cache = DecoderCache()
    steps = [block(x[:, :4], context=context, cache=cache)] + [
        block(x[:, i : i + 1], context=context, cache=cache) for i in range(4, 6)
    ]
    assert len(cache) == 6 and len(cache.cross_attn) == 5
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5)


def test_decoder_block_context_rules():
    with pytest.raises(ValueError, match="needs a context"):
        DecoderBlock(16, 2, cross_attention=True)(torch.randn(1, 3, 16))
    with pytest.raises(ValueError, match="no cross-attention"):
        DecoderBlock(16, 2)(torch.randn(1, 3, 16), context=torch.randn(1, 2, 16))


def test_decoder_block_gradients_reach_every_parameter():
    block = DecoderBlock(36, 3, cross_attention=True, dropout=0.1, attn_dropout=0.1)
    block(torch.randn(2, 5, 36), context=torch.randn(2, 4, 36)).sum().backward()
    assert all(p.grad is not None for p in block.parameters())


def test_gpt_shapes_on_odd_sizes():
    model = GPT(tiny(num_classes=5)).eval()
    tokens = torch.randint(0, 37, (2, 11))
    logits = model(tokens)
    assert logits.shape == (2, 11, 37)
    h, maps = model.hidden_states(tokens, return_attention=True)
    assert h.shape == (2, 11, 36) and len(maps) == 2 and maps[0].shape == (2, 3, 11, 11)
    torch.testing.assert_close(model.logits(h), logits)
    torch.testing.assert_close(model.features(tokens), h[:, -1])
    last = torch.tensor([4, 10])
    feats = model.features(tokens, last_index=last)
    torch.testing.assert_close(feats[0], h[0, 4])
    assert model.classify(tokens, last).shape == (2, 5)
    loss = lm_loss(logits, tokens)
    assert (
        loss.ndim == 0 and 2.5 < loss.item() < 5
    )  # about log(37) = 3.6 at initialisation


def test_tied_output_embedding_is_the_slide_formula():
    model = GPT(tiny()).eval()
    tokens = torch.randint(0, 37, (1, 6))
    h = model.hidden_states(tokens)
    torch.testing.assert_close(
        model(tokens), h @ model.tok_embed.weight.T
    )  # P(u) = softmax(h_n W_eᵀ)
    assert not hasattr(model, "lm_head")


def test_untied_and_headless_variants():
    untied = GPT(tiny(lm_head="untied", norm="rmsnorm"))
    assert untied.lm_head.weight.shape == (37, 36) and untied.lm_head.bias is None
    assert (
        count_parameters(untied)
        == count_parameters(GPT(tiny(norm="rmsnorm"))) + 37 * 36
    )
    headless = GPT(tiny(lm_head="none"))
    with pytest.raises(ValueError, match="no language-model output"):
        headless(torch.zeros(1, 3, dtype=torch.long))
    assert headless.features(torch.zeros(1, 3, dtype=torch.long)).shape == (1, 36)


def test_future_tokens_do_not_change_earlier_logits():
    model = GPT(tiny()).eval()
    tokens = torch.randint(0, 37, (1, 9))
    changed = tokens.clone()
    changed[0, 6:] = (changed[0, 6:] + 1) % 37
    torch.testing.assert_close(model(changed)[:, :6], model(tokens)[:, :6])


@pytest.mark.parametrize("norm_first", [True, False])
def test_cached_generation_gives_the_uncached_tokens(norm_first):
    torch.manual_seed(0)
    model = GPT(tiny(norm_first=norm_first, final_norm=norm_first)).eval()
    prompt = torch.randint(0, 37, (3, 5))
    # 20 new tokens outgrow the 13-token window: the window slides in both.
    greedy = model.generate(prompt, 20, temperature=0)
    assert greedy.shape == (3, 25)
    torch.testing.assert_close(
        model.generate(prompt, 20, temperature=0, use_cache=False), greedy
    )
    sampled = [
        model.generate(
            prompt,
            20,
            temperature=1.3,
            top_k=9,
            use_cache=c,
            generator=torch.Generator().manual_seed(1),
        )
        for c in (True, False)
    ]
    torch.testing.assert_close(sampled[0], sampled[1])


def test_cached_logits_equal_uncached_logits():
    model = GPT(tiny(cross_attention=True)).eval()
    tokens, context = torch.randint(0, 37, (2, 8)), torch.randn(2, 4, 36)
    full = model(tokens, context=context)
    cache = model.new_cache()
    steps = [model(tokens[:, :3], context=context, cache=cache)]
    steps += [
        model(tokens[:, i : i + 1], context=context, cache=cache) for i in range(3, 8)
    ]
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5)


def test_generation_stops_at_the_stop_token():
    model = GPT(tiny()).eval()
    with torch.no_grad():
        model.tok_embed.weight[7] *= 0
        model.tok_embed.weight[7, 0] = (
            50.0  # a token so dominant that greedy decoding picks it
        )
    out = model.generate(torch.tensor([[1, 2]]), 10, temperature=0, stop_token=7)
    assert out[0, -1] == 7 and out.shape[1] < 12


def test_sampling_rules():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0]])
    assert sample_next_token(logits, temperature=0).item() == 1
    g = torch.Generator().manual_seed(0)
    picks = {
        sample_next_token(logits, temperature=5.0, top_k=2, generator=g).item()
        for _ in range(200)
    }
    assert picks == {1, 3}
    with pytest.raises(ValueError, match="temperature"):
        sample_next_token(logits, temperature=-1)


def test_errors_say_what_to_do():
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        tiny(num_heads=5)
    with pytest.raises(ValueError, match="activation"):
        tiny(activation="gelu_fast")
    with pytest.raises(ValueError, match="context window"):
        GPT(tiny())(torch.zeros(1, 14, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        GPT(tiny())(torch.zeros(14))


def test_presets_are_registered():
    names = list_models("gpt*")
    for name in (
        "gpt1",
        "gpt2",
        "gpt2_medium",
        "gpt2_large",
        "gpt2_xl",
        "gpt3_small",
        "gpt3_medium",
        "gpt3_large",
        "gpt3_xl",
        "gpt3_2_7b",
        "gpt3_6_7b",
        "gpt3_13b",
        "gpt3_175b",
    ):
        assert name in names
    assert get_config("gpt3_13b").embed_dim == 40 * 128
    assert get_config("gpt3_175b").head_dim == 128


@pytest.mark.parametrize("name", ["gpt2", "gpt2_medium", "gpt2_large", "gpt2_xl"])
def test_gpt2_parameter_counts_equal_hugging_face(name):
    transformers = pytest.importorskip("transformers")
    c = get_config(name)
    hf_config = transformers.GPT2Config(
        vocab_size=c.vocab_size,
        n_positions=c.max_seq_len,
        n_embd=c.embed_dim,
        n_layer=c.depth,
        n_head=c.num_heads,
    )
    with torch.device("meta"):
        ours, theirs = create_model(name), transformers.GPT2LMHeadModel(hf_config)
    assert count_parameters(ours) == count_parameters(theirs)


def test_gpt1_parameter_count_equals_hugging_face():
    transformers = pytest.importorskip("transformers")
    with torch.device("meta"):
        ours, theirs = (
            create_model("gpt1"),
            transformers.OpenAIGPTLMHeadModel(transformers.OpenAIGPTConfig()),
        )
    assert count_parameters(ours) == count_parameters(theirs)
