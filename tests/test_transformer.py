"""The one-block transformer example (examples/transformer.py): the hand-written
backward of every op and JAX's autodiff train it alike; trained, it reverses
held-out sequences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import BACKWARD_RTOL

from examples import transformer


def test_transformer_training_hand_written_matches_autodiff():
    """20 Adam steps from one initialization on the same batches, float64: the
    parameters agree to rounding (Adam divides by the gradient's own size, so an
    error would show at once)."""
    params = transformer.init(jax.random.key(1), jnp.float64)
    data = jnp.asarray(transformer.batches(2, 20))
    test = jnp.asarray(transformer.batches(3, 1)[0])
    hand = transformer.train(params, data, test, autodiff=False)
    auto = transformer.train(params, data, test, autodiff=True)
    assert transformer.max_relative_difference(hand[0], auto[0]) < BACKWARD_RTOL
    np.testing.assert_allclose(hand[1], auto[1], rtol=BACKWARD_RTOL)
    assert float(hand[1][-1]) < float(hand[1][0])  # it learns


def test_held_out_sequences_are_never_trained_on():
    train = transformer.batches(0, 30)
    test = transformer.held_out(train)
    seen = {s.tobytes() for s in train.reshape(-1, transformer.LENGTH)}
    assert len(test) == transformer.TEST_SEQUENCES
    assert not any(s.tobytes() in seen for s in test)


@pytest.mark.slow
def test_transformer_reverses_held_out_sequences(tmp_path):
    res = transformer.run(tmp_path, quick=True)
    measured = res["measured"]
    assert res["verdict"] == "holds", res["summary"]
    assert measured["sequence_accuracy_hand"] >= 0.95
    assert measured["sequence_accuracy_autodiff"] >= 0.95
    assert measured["max_relative_parameter_difference_float32"] < 1e-3
    assert measured["max_relative_parameter_difference_float64"] < 1e-9
    assert measured["mirrored_attention"] > 0.5
    assert (tmp_path / "transformer.png").is_file()
