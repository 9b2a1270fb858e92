"""Invariants of every sequence family: causality, cache = recompute, save/load."""

import pytest
import torch

from tunesmith.models.checkpoint import load_weights, read_config, write_checkpoint
from tunesmith.models.registry import (
    SEQUENCE_FAMILIES,
    build_model,
    config_from_dict,
    config_to_dict,
    make_config,
)

V = 40


def tiny(family):
    torch.manual_seed(0)
    m = build_model(family, make_config(family, V, "debug", dropout=0.0))
    return m.eval()


@pytest.mark.parametrize("family", SEQUENCE_FAMILIES)
def test_shapes_and_loss(family):
    m = tiny(family)
    x = torch.randint(0, V, (3, 17))
    logits, loss = m(x, x)
    assert logits.shape == (3, 17, V) and torch.isfinite(loss)


@pytest.mark.parametrize("family", SEQUENCE_FAMILIES)
def test_causality(family):
    m = tiny(family)
    x = torch.randint(0, V, (1, 20))
    y = x.clone()
    y[0, 12] = (y[0, 12] + 1) % V
    with torch.no_grad():
        a, _ = m(x)
        b, _ = m(y)
    assert torch.allclose(a[:, :12], b[:, :12], atol=1e-6)
    assert not torch.allclose(a[:, 12:], b[:, 12:], atol=1e-6)


@pytest.mark.parametrize("family", SEQUENCE_FAMILIES)
def test_incremental_state_matches_full_recompute(family):
    m = tiny(family)
    x = torch.randint(0, V, (2, 30))
    with torch.no_grad():
        full, _ = m(x)
        logits, state = m.step(x[:, :10], None)  # prompt in one call, then token by token
        outs = [logits]
        for t in range(10, 30):
            lg, state = m.step(x[:, t : t + 1], state)
            outs.append(lg)
    inc = torch.cat(outs, dim=1)
    assert torch.allclose(full, inc, atol=1e-5), (full - inc).abs().max()
    # one piece at a time, as sampling runs (the LSTM's matrix-vector path)
    m.eval()
    with torch.no_grad():
        full1, _ = m(x[:1])
        lg, state = m.step(x[:1, :1], None)
        outs = [lg]
        for t in range(1, 30):
            lg, state = m.step(x[:1, t : t + 1], state)
            outs.append(lg)
    inc1 = torch.cat(outs, dim=1)
    assert torch.allclose(full1, inc1, atol=1e-5), (full1 - inc1).abs().max()


@pytest.mark.parametrize("family", ["lstm", "transformer"])
def test_int8_sampling_steps_follow_the_float_model(family):
    from tunesmith.generate.sampler import sampling_mode

    m = tiny(family)
    keys = set(m.state_dict())
    x = torch.randint(0, V, (1, 60))
    with torch.no_grad():
        full, _ = m(x)
    m.int8_sampling = True
    threads = torch.get_num_threads()
    with sampling_mode(), torch.no_grad():
        assert torch.get_num_threads() == 1
        lg, state = m.step(x[:, :1], None)
        outs = [lg]
        for t in range(1, 60):
            lg, state = m.step(x[:, t : t + 1], state)
            outs.append(lg)
    assert torch.get_num_threads() == threads  # restored
    inc = torch.cat(outs, dim=1)
    assert not torch.allclose(full, inc, atol=1e-6)  # not the float path: the int8 kernels ran
    assert set(m.state_dict()) == keys  # nothing int8 leaks into a checkpoint
    p, q = torch.log_softmax(full, -1), torch.log_softmax(inc, -1)
    assert (p - q).abs().max() < 0.05, (p - q).abs().max()
    nll = -p[0, :-1].gather(-1, x[0, 1:, None]).mean(), -q[0, :-1].gather(-1, x[0, 1:, None]).mean()
    assert abs(float(nll[0] - nll[1])) < 0.005 * float(nll[0])


def test_transformer_cache_with_several_new_tokens():
    m = tiny("transformer")
    x = torch.randint(0, V, (1, 24))
    with torch.no_grad():
        full, _ = m(x)
        a, st = m.step(x[:, :8], None)
        b, st = m.step(x[:, 8:20], st)  # a block of new tokens after a cache: causal inside the block
        c, st = m.step(x[:, 20:], st)
    assert torch.allclose(full, torch.cat([a, b, c], 1), atol=1e-5)


@pytest.mark.parametrize("family", SEQUENCE_FAMILIES)
def test_log_prob_is_sum_of_token_log_probs(family):
    m = tiny(family)
    x = torch.randint(0, V, (2, 12))
    lp = m.log_prob(x)
    logits, _ = m(x[:, :-1])
    ref = torch.log_softmax(logits, -1).gather(-1, x[:, 1:, None]).squeeze(-1).sum(1)
    assert torch.allclose(lp, ref, atol=1e-5)


@pytest.mark.parametrize("family", SEQUENCE_FAMILIES)
def test_checkpoint_save_load_identical(tmp_path, family):
    m = tiny(family)
    write_checkpoint(tmp_path / "ck", m, {"family": family, "model": config_to_dict(m.config)})
    cfg = read_config(tmp_path / "ck")
    m2 = build_model(family, config_from_dict(family, cfg["model"])).eval()
    load_weights(m2, tmp_path / "ck")
    x = torch.randint(0, V, (2, 15))
    with torch.no_grad():
        assert torch.equal(m(x)[0], m2(x)[0])
    assert not list(tmp_path.glob("ck.tmp")) and not list(tmp_path.glob("ck.old"))


def test_grammar_mask_makes_a_proper_distribution():
    from tunesmith.represent import frames

    m = build_model("lstm", make_config("lstm", frames.VOCAB_SIZE, "debug"))
    allowed = torch.from_numpy(frames.allowed_mask_table())
    x = torch.tensor([[frames.BOS, 3, 40]])
    logits, _ = m(x, allowed=allowed)
    p = torch.softmax(logits[0, -1], -1)
    assert p[:41].sum() == 0 and torch.isclose(p.sum(), torch.tensor(1.0))


def test_transformer_attention_dropout_only_when_configured():
    """Residual dropout off: training-mode outputs are deterministic unless attn_dropout > 0
    (the default 0 keeps PyTorch's fused attention kernel; see TransformerConfig)."""
    x = torch.randint(0, V, (2, 16))
    outs = {}
    for p in (0.0, 0.5):
        torch.manual_seed(0)
        m = build_model("transformer", make_config("transformer", V, "debug", dropout=0.0, attn_dropout=p)).train()
        torch.manual_seed(1)
        a, _ = m(x)
        torch.manual_seed(2)
        b, _ = m(x)
        outs[p] = torch.allclose(a, b)
    assert outs[0.0] and not outs[0.5]


def test_transformer_flops_count_the_tied_output_projection():
    c = make_config("transformer", V, "debug", dropout=0.0)
    m = build_model("transformer", c)
    matrices = sum(p.numel() for n, p in m.named_parameters() if p.dim() == 2 and not n.startswith("embed"))
    attn = 12 * c.n_layer * c.n_embd * 64 / 2
    assert m.config.tie_weights
    assert m.flops_per_token(64) == 6 * (matrices + V * c.n_embd) + attn
