"""Dense masked GAT, readout, bilinear discriminator and DGI loss (tvr/models/graph.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tvr.models.graph import (
    BilinearDiscriminator,
    DenseGAT,
    GraphInfomax,
    infomax_bce,
    masked_readout,
)


def node_batch(b=3, n=5, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, d, generator=g)
    mask = torch.zeros(b, n, dtype=torch.bool)
    for i, k in enumerate([n, 3, 1][:b]):
        mask[i, :k] = True
    return x, mask


def naive_gat(gat: DenseGAT, x: torch.Tensor) -> torch.Tensor:
    """GAT of one graph's valid nodes with explicit loops (methods.md §9.3)."""
    w = gat.proj.weight.view(gat.heads, gat.out_dim, gat.in_dim)
    outs = []
    for k in range(gat.heads):
        z = x @ w[k].T  # [n, F]
        n = len(z)
        e = torch.zeros(n, n)
        for i in range(n):
            for j in range(n):
                e[i, j] = F.leaky_relu(gat.att_self[k] @ z[i] + gat.att_neighbor[k] @ z[j], 0.2)
        outs.append(torch.softmax(e, dim=-1) @ z)
    return gat.act(torch.stack(outs).mean(0))


@pytest.mark.parametrize("heads", [1, 3])
def test_gat_attention_rows_and_padding(heads):
    torch.manual_seed(0)
    gat = DenseGAT(6, 4, heads=heads)
    x, mask = node_batch()
    h, attn = gat(x, mask, return_attention=True)
    assert h.shape == (3, 5, 4) and attn.shape == (3, heads, 5, 5)
    valid_rows = mask[:, None, :].expand(-1, heads, -1)  # [B, H, N]
    torch.testing.assert_close(attn.sum(-1)[valid_rows], torch.ones(int(valid_rows.sum())))
    assert (attn.sum(-1)[~valid_rows] == 0).all()  # padded rows
    assert (attn.permute(0, 1, 3, 2)[~valid_rows] == 0).all()  # padded columns
    assert (h[~mask] == 0).all()  # padded node outputs


@pytest.mark.parametrize(("heads", "activation"), [(1, "elu"), (2, "prelu"), (3, "none")])
def test_gat_matches_naive_loops(heads, activation):
    torch.manual_seed(1)
    gat = DenseGAT(6, 4, heads=heads, activation=activation)
    x, mask = node_batch()
    h = gat(x, mask)
    for b in range(3):
        ref = naive_gat(gat, x[b][mask[b]])
        torch.testing.assert_close(h[b][mask[b]], ref, atol=1e-5, rtol=1e-5)


def test_gat_ignores_padded_garbage():
    torch.manual_seed(2)
    gat = DenseGAT(6, 4, heads=2)
    x, mask = node_batch()
    noisy = torch.where(mask[..., None], x, 1e3 * torch.randn_like(x))
    torch.testing.assert_close(gat(noisy, mask), gat(x, mask))


def test_gat_parameter_count_and_no_bias():
    assert sum(p.numel() for p in DenseGAT(512, 64).parameters()) == 32_896
    assert sum(p.numel() for p in DenseGAT(64, 64, heads=8).parameters()) == 8 * 4_224
    assert sum(p.numel() for p in DenseGAT(512, 64, activation="prelu").parameters()) == 32_897
    assert not any("bias" in n for n, _ in DenseGAT(8, 4, heads=2).named_parameters())


def test_gat_bad_input():
    gat = DenseGAT(6, 4)
    with pytest.raises(ValueError, match=r"\[B, N, 6\]"):
        gat(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="activation 'tanh'"):
        DenseGAT(6, 4, activation="tanh")
    with pytest.raises(ValueError, match="attn_dropout=1.5"):
        DenseGAT(6, 4, attn_dropout=1.5)


def test_gat_empty_graph_is_zero_not_nan():
    gat = DenseGAT(6, 4)
    h, attn = gat(torch.randn(1, 3, 6), torch.zeros(1, 3), return_attention=True)
    assert (h == 0).all() and (attn == 0).all()


def test_gat_attention_dropout_only_in_training():
    torch.manual_seed(3)
    gat = DenseGAT(6, 4, attn_dropout=0.5)
    x, mask = node_batch()
    gat.eval()
    torch.testing.assert_close(gat(x, mask), gat(x, mask))
    gat.train()
    assert not torch.equal(gat(x, mask), gat(x, mask))


def test_masked_readout_known_answer():
    h = torch.tensor([[[1.0, 2.0], [3.0, -2.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(masked_readout(h, mask), torch.sigmoid(torch.tensor([[2.0, 0.0]])))
    torch.testing.assert_close(masked_readout(h), torch.sigmoid(h.mean(1)))


def test_bilinear_discriminator_known_answer():
    disc = BilinearDiscriminator(2)
    assert sum(p.numel() for p in disc.parameters()) == 5
    assert disc.bias.item() == 0.0
    with torch.no_grad():
        disc.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        disc.bias.fill_(0.5)
    h = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])  # [1, 3, 2]
    s = torch.tensor([[1.0, -1.0]])  # U s = [-1, -1]
    torch.testing.assert_close(disc(h, s), torch.tensor([[-0.5, -0.5, -1.5]]))
    assert BilinearDiscriminator(64).weight.numel() + 1 == 4_097


def test_graph_infomax_encode_is_scale_invariant():
    torch.manual_seed(4)
    gi = GraphInfomax(DenseGAT(6, 4), BilinearDiscriminator(4))
    x, mask = node_batch()
    a, b = gi.encode(x, mask, return_attention=True), gi.encode(7.0 * x, mask)
    torch.testing.assert_close(a.nodes, b.nodes)
    torch.testing.assert_close(a.summary, masked_readout(a.nodes, mask))
    assert a.attention.shape == (3, 1, 5, 5) and b.attention is None
    assert gi.discriminate(a.nodes, a.summary).shape == (3, 5)


def test_infomax_bce_known_answer():
    pos = torch.tensor([[0.0, 2.0, 9.0]])
    pos_mask = torch.tensor([[1, 1, 0]])
    neg = torch.tensor([[1.0, -1.0, 5.0, 0.0]])
    neg_mask = torch.tensor([[1, 0, 1, 1]])

    def bce(x, y):
        p = 1 / (1 + math.exp(-x))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    pos_term = (bce(0.0, 1) + bce(2.0, 1)) / 2
    neg_term = (bce(1.0, 0) + bce(5.0, 0) + bce(0.0, 0)) / 3
    expected = torch.tensor([0.5 * (pos_term + neg_term)])
    torch.testing.assert_close(infomax_bce(pos, pos_mask, neg, neg_mask), expected)
