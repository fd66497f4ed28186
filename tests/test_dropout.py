"""``PackedDropout``: torch's dropout semantics with a cheaper CPU mask, and seq2seq's use of it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtrec.builtins.dropout import PackedDropout, packed_keep_mask, use_packed_dropout
from mtrec.builtins.seq2seq import Seq2Seq, Seq2SeqParams


def test_mask_drops_p_of_the_elements_and_keeps_the_expectation():
    torch.manual_seed(0)
    mask = packed_keep_mask(torch.Size([400, 500]), 0.3, torch.float32)
    kept = mask != 0
    # 200,000 Bernoulli(0.7) draws: the kept share is within 5 standard errors (0.001) of 0.7
    assert abs(float(kept.float().mean()) - 0.7) < 0.005
    scale = 65536 / (65536 - round(0.3 * 65536))
    assert torch.allclose(mask[kept], torch.tensor(scale)) and abs(float(mask.mean()) - 1.0) < 0.01
    # consecutive elements are independent: no lane of the packed draws is stuck
    assert abs(float((kept[:, 0::2] & kept[:, 1::2]).float().mean()) - 0.49) < 0.01
    assert abs(float((kept[:, 0::4] & ~kept[:, 3::4]).float().mean()) - 0.21) < 0.01


def test_masks_follow_torch_seed_and_differ_between_calls():
    torch.manual_seed(7)
    first, second = packed_keep_mask(torch.Size([64]), 0.5, torch.float32), packed_keep_mask(torch.Size([64]), 0.5, torch.float32)
    torch.manual_seed(7)
    assert torch.equal(first, packed_keep_mask(torch.Size([64]), 0.5, torch.float32))
    assert not torch.equal(first, second)
    torch.manual_seed(7)
    packed_keep_mask(torch.Size([64]), 0.5, torch.float32)
    with torch.random.fork_rng():  # draws inside fork_rng do not move the outer stream
        packed_keep_mask(torch.Size([64]), 0.5, torch.float32)
    assert torch.equal(second, packed_keep_mask(torch.Size([64]), 0.5, torch.float32))


def test_packed_dropout_behaves_like_nn_dropout():
    layer = PackedDropout(0.25)
    x = torch.randn(8, 16, requires_grad=True)
    layer.eval()
    assert layer(x) is x
    layer.train()
    torch.manual_seed(3)
    y = layer(x)
    torch.manual_seed(3)
    mask = packed_keep_mask(x.shape, 0.25, x.dtype)
    assert torch.equal(y, x * mask)
    y.sum().backward()
    assert torch.equal(x.grad, mask)  # the gradient flows through kept elements only, scaled
    assert PackedDropout(0.0).train()(x) is x
    with pytest.raises(ValueError, match="dropout probability"):
        PackedDropout(1.0)


def test_use_packed_dropout_swaps_every_dropout_module_and_keeps_p():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.2), nn.Sequential(nn.Dropout(0.4), nn.ReLU()))
    assert use_packed_dropout(model) == 2
    layers = [m for m in model.modules() if isinstance(m, (nn.Dropout, PackedDropout))]
    assert [type(m) for m in layers] == [PackedDropout, PackedDropout] and [m.p for m in layers] == [0.2, 0.4]


@pytest.mark.parametrize("masks,expected", [("packed", PackedDropout), ("torch", nn.Dropout)])
def test_seq2seq_dropout_masks_option(masks, expected):
    table = torch.cat([torch.zeros(1, 2, dtype=torch.long), torch.arange(20).view(10, 2) % 8])
    params = Seq2SeqParams(d_model=16, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2, d_kv=8,
                           dropout_masks=masks)
    model = Seq2Seq(params, table, torch.zeros(11, dtype=torch.long), 8, ["A"], max_len=4)
    dropouts = [m for m in model.modules() if isinstance(m, (nn.Dropout, PackedDropout))]
    assert dropouts and all(type(m) is expected and m.p == 0.1 for m in dropouts)
    # the state dict does not depend on how masks are drawn (checkpoints load either way)
    other = Seq2Seq(params.model_copy(update={"dropout_masks": "torch" if masks == "packed" else "packed"}),
                    table, torch.zeros(11, dtype=torch.long), 8, ["A"], max_len=4)
    assert model.state_dict().keys() == other.state_dict().keys()
