"""Our GPT and Hugging Face's GPT2LMHeadModel: the same logits, an exact round trip, refusals."""

import pytest
import torch

from vitcourse.hub import ConversionError, gpt_from_hf, gpt_to_hf
from vitcourse.hub.gpt import gpt2_names
from vitcourse.models import GPT, GPTConfig, create_model

transformers = pytest.importorskip("transformers")


def hf_gpt2(seed=0, **fields):
    config = transformers.GPT2Config(
        **{"vocab_size": 37, "n_positions": 13, "n_embd": 36, "n_layer": 2, "n_head": 3, **fields}
    )
    config.bos_token_id = config.eos_token_id = None
    torch.manual_seed(seed)
    return transformers.GPT2LMHeadModel(config).eval()


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.mark.parametrize(
    "fields",
    [{}, {"n_inner": 37}, {"tie_word_embeddings": False}, {"add_cross_attention": True}],
    ids=["plain", "mlp37", "untied", "cross"],
)
def test_logits_equal_and_round_trip_is_exact(fields):
    hf = hf_gpt2(**fields)
    ours = gpt_from_hf(hf)
    assert isinstance(ours, GPT) and not ours.training
    tokens = torch.randint(0, 37, (2, 11))
    context = torch.randn(2, 5, 36) if fields.get("add_cross_attention") else None
    with torch.no_grad():
        expected = hf(tokens, encoder_hidden_states=context).logits
        torch.testing.assert_close(ours(tokens, context=context), expected, rtol=0, atol=1e-5)
    back = gpt_to_hf(ours)
    assert type(back).__name__ == "GPT2LMHeadModel"
    assert_same_state(back, hf)
    assert_same_state(gpt_from_hf(back), ours)


@pytest.mark.slow
def test_gpt2_small_logits_within_1e_4():
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()
    ours = gpt_from_hf(hf)
    assert ours.config == create_model("gpt2").config
    tokens = torch.randint(0, 50257, (1, 64))
    with torch.no_grad():
        assert (ours(tokens) - hf(tokens).logits).abs().max() < 1e-4
    assert_same_state(gpt_to_hf(ours), hf)


def test_ours_to_hf_generates_the_same_tokens():
    config = GPTConfig(vocab_size=37, max_seq_len=13, embed_dim=36, depth=2, num_heads=3, dropout=0.0)
    ours = GPT(config).eval()
    hf = gpt_to_hf(ours)
    tokens = torch.randint(0, 37, (1, 4))
    hf.generation_config.eos_token_id = None  # never stop early
    ids = hf.generate(tokens, max_new_tokens=6, do_sample=False, pad_token_id=0)
    torch.testing.assert_close(ids, ours.generate(tokens, 6, temperature=0))


def test_mismatched_configs_are_refused():
    with pytest.raises(ConversionError, match="scale_attn_by_inverse_layer_idx"):
        gpt_from_hf(hf_gpt2(scale_attn_by_inverse_layer_idx=True))
    with pytest.raises(ConversionError, match="activation_function"):
        gpt_from_hf(hf_gpt2(activation_function="gelu_fast"))
    with pytest.raises(ConversionError, match="post-norm"):
        gpt_to_hf(GPT(GPTConfig(vocab_size=37, max_seq_len=13, embed_dim=36, depth=1, num_heads=3,
                                norm_first=False, final_norm=False)))
    with pytest.raises(ConversionError, match="classification head"):
        gpt_to_hf(GPT(GPTConfig(vocab_size=37, max_seq_len=13, embed_dim=36, depth=1, num_heads=3, num_classes=4)))
    with pytest.raises(ConversionError, match="expected one of"):
        gpt_from_hf(transformers.OpenAIGPTLMHeadModel(transformers.OpenAIGPTConfig(n_layer=1, n_embd=12, n_head=2)))


def test_a_tensor_of_the_wrong_shape_is_named():
    hf = hf_gpt2()
    hf.transformer.h[1].mlp.c_fc.weight = torch.nn.Parameter(torch.zeros(36, 40))
    named = r"blocks\.1\.mlp\.fc1\.weight \(from h\.1\.mlp\.c_fc\.weight\): got \(40, 36\), expected \(144, 36\)"
    with pytest.raises(ConversionError, match=named):
        gpt_from_hf(hf)


def test_name_table_covers_every_parameter():
    hf = hf_gpt2(add_cross_attention=True)
    theirs = {k.removeprefix("transformer.") for k in hf.state_dict()} - {"lm_head.weight"}
    assert theirs == {hf_name for hf_name, _, _ in gpt2_names(2, cross_attention=True)}
