"""Fourier-KArAt (Kolmogorov-Arnold attention), self-attention with swappable scores, and the ViT built on them."""

import math

import pytest
import torch

from kernelnn.layers import FourierKArAt, KArAt, SelfAttention, SoftmaxScores
from kernelnn.models import ViT


def karat_loops(scores: FourierKArAt, logits: torch.Tensor) -> torch.Tensor:
    """The paper's eq. 2 and the low-rank map, unit by unit: A_kn = sum_p W_np sum_q phi_pq(A_kq)."""
    batch, heads, n, _ = logits.shape
    G = scores.grid_size
    out = torch.zeros_like(logits)
    for b in range(batch):
        for h in range(heads):
            for k in range(n):
                row = torch.zeros(scores.rank, dtype=logits.dtype)
                for p in range(scores.rank):
                    for q in range(n):
                        x = logits[b, h, k, q]
                        for m in range(1, G + 1):
                            row[p] = row[p] + scores.fourier[h, q, m - 1, p] * torch.cos(m * x) \
                                + scores.fourier[h, q, G + m - 1, p] * torch.sin(m * x)
                        if scores.base_activation is not None:
                            row[p] = row[p] + scores.base_weight[h, q, p] * scores.base_activation(x)
                out[b, h, k] = scores.mix[h] @ row
    return out


@pytest.mark.parametrize("base", [None, "silu"])
def test_fourier_karat_matches_the_formula_with_gradients(base):
    torch.manual_seed(0)
    scores = FourierKArAt(heads=2, n_tokens=4, grid_size=2, rank=3, base_activation=base).double()
    logits = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    fast, slow = scores(logits), karat_loops(scores, logits)
    torch.testing.assert_close(fast, slow)
    weights = torch.randn_like(fast)
    grads = torch.autograd.grad((fast * weights).sum(), [logits, *scores.parameters()])
    expected = torch.autograd.grad((slow * weights).sum(), [logits, *scores.parameters()])
    for a, b in zip(grads, expected, strict=True):
        torch.testing.assert_close(a, b)


def test_default_initialisation_keeps_scores_of_order_one():
    torch.manual_seed(0)
    scores = FourierKArAt(heads=3, n_tokens=65)
    out = scores(torch.randn(8, 3, 65, 65))
    assert 0.1 < out.std() < 3


def test_bad_logits_name_the_layer_and_the_shape():
    scores = FourierKArAt(heads=2, n_tokens=5)
    with pytest.raises(ValueError, match=r"FourierKArAt: logits must have shape \(batch, 2, 5, 5\).*n_tokens=5"):
        scores(torch.randn(1, 2, 6, 6))
    with pytest.raises(ValueError, match="FourierKArAt: coefficient_std"):
        FourierKArAt(2, 5, coefficient_std=-1.0)


def test_softmax_attention_is_the_textbook_formula():
    torch.manual_seed(0)
    attention = SelfAttention(8, heads=2).double()
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    q, k, v = attention.qkv(x).reshape(3, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    weights = (q @ k.transpose(-1, -2) / math.sqrt(4)).softmax(-1)
    expected = attention.out((weights @ v).transpose(1, 2).reshape(3, 5, 8))
    torch.testing.assert_close(attention(x), expected)
    # The explicit-logits path (any other score module) agrees with the fused one.
    explicit = SelfAttention(8, heads=2, scores=SoftmaxScores()).double()
    explicit.load_state_dict(attention.state_dict())
    explicit.scores = torch.nn.Softmax(dim=-1)
    torch.testing.assert_close(explicit(x), expected)


def test_karat_needs_its_token_count():
    with pytest.raises(ValueError, match="give n_tokens"):
        SelfAttention(8, heads=2, scores="fourier_karat")
    with pytest.raises(ValueError, match=r"SelfAttention: input must have shape \(batch, 5, 8\)"):
        KArAt(8, heads=2, n_tokens=5)(torch.randn(2, 6, 8))
    with pytest.raises(ValueError, match="unknown|not a known|valid"):
        SelfAttention(8, heads=2, n_tokens=5, scores="relu")


def test_vit_universal_sharing_shares_one_operator():
    blockwise = ViT(1, 10, (8, 8), patch_size=2, width=16, depth=3, heads=2, attention="fourier_karat")
    universal = ViT(1, 10, (8, 8), patch_size=2, width=16, depth=3, heads=2, attention="fourier_karat",
                    sharing="universal")
    operators = {id(block.attention.scores) for block in universal.blocks}
    assert len(operators) == 1
    operator = sum(p.numel() for p in universal.blocks[0].attention.scores.parameters())
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731  (shared tensors counted once)
    assert count(blockwise) - count(universal) == 2 * operator
    x = torch.randn(2, 1, 8, 8)
    universal(x).sum().backward()
    assert universal.blocks[0].attention.scores.fourier.grad is not None


def test_vit_bad_configuration_and_input():
    with pytest.raises(ValueError, match="resolution"):
        ViT(1, 10, (9, 8), patch_size=2)
    with pytest.raises(ValueError, match="sharing"):
        ViT(1, 10, (8, 8), patch_size=2, sharing="global")
    with pytest.raises(ValueError, match=r"ViT: input must have shape \(batch, 1, 8, 8\)"):
        ViT(1, 10, (8, 8), patch_size=2, width=8, heads=2)(torch.randn(2, 1, 16, 16))
