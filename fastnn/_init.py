"""Weight initialisations for the MLP: ``glorot`` (scikit-learn's), ``he``, ``normal``, ``zeros``.

Every initialiser draws from the estimator's ``numpy.random.RandomState`` in float64, layer by
layer (weights, then biases), and casts to the training dtype, so a given ``random_state`` gives
the same starting point in float32 and float64. ``glorot`` draws exactly the numbers that
scikit-learn's ``MLPClassifier`` draws, so both libraries start from identical weights.
"""

import numpy as np

INITS = ("glorot", "he", "normal", "zeros")


def init_layer(init, fan_in, fan_out, activation, random_state, dtype):
    """Initial ``(coef, intercept)`` of one layer, shapes ``(fan_in, fan_out)`` and ``(fan_out,)``.

    - ``glorot``: uniform in ``[-b, b]``, ``b = sqrt(factor / (fan_in + fan_out))``, ``factor`` 6
      (2 for logistic hidden units), for weights and biases (scikit-learn's rule).
    - ``he``: weights normal with std ``sqrt(2 / fan_in)`` (suited to ReLU), biases zero.
    - ``normal``: weights normal with std ``1 / sqrt(fan_in)``, biases standard normal (the
      "default" initialiser of the classic neural-networks-and-deep-learning course).
    - ``zeros``: everything zero. Every hidden unit then computes the same function and receives
      the same update (symmetry is never broken): useful only to show why random init matters.
    """
    if init == "glorot":
        factor = 2.0 if activation == "logistic" else 6.0
        bound = np.sqrt(factor / (fan_in + fan_out))
        coef = random_state.uniform(-bound, bound, (fan_in, fan_out))
        intercept = random_state.uniform(-bound, bound, fan_out)
    elif init == "he":
        coef = random_state.normal(0.0, np.sqrt(2.0 / fan_in), (fan_in, fan_out))
        intercept = np.zeros(fan_out)
    elif init == "normal":
        coef = random_state.normal(0.0, 1.0 / np.sqrt(fan_in), (fan_in, fan_out))
        intercept = random_state.normal(0.0, 1.0, fan_out)
    elif init == "zeros":
        coef = np.zeros((fan_in, fan_out))
        intercept = np.zeros(fan_out)
    else:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    return (np.ascontiguousarray(coef, dtype=dtype), np.ascontiguousarray(intercept, dtype=dtype))


def init_params(init, layer_units, activation, random_state, dtype):
    """Lists ``coefs, intercepts`` for a network with ``layer_units`` (input, hidden..., output)."""
    coefs, intercepts = [], []
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
        coef, intercept = init_layer(init, fan_in, fan_out, activation, random_state, dtype)
        coefs.append(coef)
        intercepts.append(intercept)
    return coefs, intercepts
