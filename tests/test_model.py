"""CharLSTM: shapes, parameter counts, one-hot input equals its dense definition."""

import torch
import torch.nn.functional as F

from lstmtui.core.config import ModelConfig
from lstmtui.core.model import CharLSTM, flops_per_char


def test_shapes_and_state():
    model = CharLSTM(ModelConfig(vocab_size=11, hidden=16, layers=3, input="embedding", embedding_dim=5))
    x = torch.randint(0, 11, (4, 9))
    logits, (h, c) = model(x)
    assert logits.shape == (4, 9, 11)
    assert h.shape == c.shape == (3, 4, 16)


def test_parameter_count_matches_config_formula():
    for mode in ("onehot", "embedding"):
        config = ModelConfig(vocab_size=65, hidden=64, layers=2, input=mode, embedding_dim=24)
        assert CharLSTM(config).parameter_count() == config.parameter_count()


def test_onehot_input_is_a_onehot_vector_times_the_weights():
    torch.manual_seed(0)
    model = CharLSTM(ModelConfig(vocab_size=7, hidden=8, layers=1, input="onehot", dropout=0.0)).eval()
    x = torch.tensor([[3, 1, 6]])
    encoded = model.encode_input(x)
    assert torch.equal(encoded, F.one_hot(x, 7).float())
    # The first layer's input product then picks the weight column of each character.
    w = model.lstm.weight_ih_l0
    assert torch.allclose(encoded[0] @ w.T, w[:, [3, 1, 6]].T)


def test_flops_grow_with_size():
    small = flops_per_char(ModelConfig(vocab_size=65, hidden=256))
    large = flops_per_char(ModelConfig(vocab_size=65, hidden=512))
    assert large > 3 * small


def test_last_logits_are_forwards_last_position():
    torch.manual_seed(1)
    model = CharLSTM(ModelConfig(vocab_size=9, hidden=12, layers=2)).eval()
    x = torch.randint(0, 9, (2, 7))
    with torch.no_grad():
        full, (h, c) = model(x)
        last, (h2, c2) = model.last_logits(x)
    assert last.shape == (2, 1, 9)
    assert torch.equal(last, full[:, -1:]) and torch.equal(h, h2) and torch.equal(c, c2)


def test_step_weights_are_the_parameters():
    for mode in ("onehot", "embedding"):
        model = CharLSTM(ModelConfig(vocab_size=10, hidden=6, layers=3, input=mode, embedding_dim=4))
        weights = model.step_weights()
        assert weights.hidden == 6 and len(weights.layers) == 3
        assert (weights.embedding is None) == (mode == "onehot")
        assert weights.layers[1].weight_ih.data_ptr() == model.lstm.weight_ih_l1.data_ptr()  # shared, not copied
        assert weights.layers[2].bias_hh.shape == (24,) and weights.head_weight.shape == (10, 6)
        assert not any(t.requires_grad for t in (weights.head_bias, weights.layers[0].weight_hh))
