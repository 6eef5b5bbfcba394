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
