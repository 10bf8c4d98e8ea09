"""The checks every Keras layer and model of the package should pass, shared by the tests.

After keras-hub's ``TestCase`` (``keras_hub/src/tests/test_case.py``): one function per
kind of check, so that each layer or model test states only what is particular to it
(its arguments, an input, the shapes and values it expects). Plain functions rather
than a ``unittest`` class, as the tests are pytest functions; nothing here imports
pytest, so the module could move into the package unchanged.

``run_layer_test``        a layer: shapes (real, predicted by Keras, free sizes),
                          values, weight counts, config round trip with identical
                          outputs, gradients, mixed precision, traced graph.
``run_serialization_test`` ``get_config``/``from_config`` and
                          ``serialize_keras_object``/JSON/``deserialize_keras_object``
                          round trips give the same config; custom classes are
                          registered and their config has every constructor argument.
``run_model_saving_test`` ``.keras`` save and load: same class, config, weights, outputs.
``run_model_test``        a model's real pass: output shapes, dtypes, value range, and
                          the symbolic shapes agree.
``run_free_shape_test``   traced with unknown batch and spatial sizes (as in a SavedModel
                          signature), a layer or model gives its eager outputs.
``gradient_norm``         every trainable variable of a model gets a finite gradient.

Helpers: ``random_array`` (seeded inputs), ``as_numpy_list`` (any output structure as
a list of arrays), ``build_once`` (one model per builder and arguments per process).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

Shape = tuple[int | None, ...]


# ------------------------------------------------------------------------------ helpers


def random_array(*shape: int, seed: int | None = None, dtype: str = "float32") -> np.ndarray:
    """Uniform [0, 1) values of ``shape``, seeded by ``seed`` (default: the sum of ``shape``)."""
    rng = np.random.default_rng(sum(shape) if seed is None else seed)
    return rng.random(shape).astype(dtype)


def as_numpy_list(outputs: Any) -> list[np.ndarray]:
    """A tensor, array or nested list/tuple/dict of them, as a flat list of NumPy arrays."""
    return [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(outputs)]


@functools.cache
def build_once(builder: Callable[..., keras.Model], /, **kwargs: Any) -> keras.Model:
    """``builder(**kwargs)``, built once per process: building the big U-Nets is slow.

    The model is shared by every test that asks for the same builder and arguments: a
    test that changes its weights must put them back.
    """
    return builder(**kwargs)


def _shape_list(shapes: Any) -> list[Shape]:
    """One shape or a sequence of shapes as a list of tuples."""
    if isinstance(shapes, Sequence) and shapes and isinstance(shapes[0], Sequence):
        return [tuple(s) for s in shapes]
    return [tuple(shapes)]


def _free_shape(shape: Sequence[int]) -> Shape:
    """``shape`` with the batch and spatial sizes unknown (channels kept)."""
    return (None,) * (len(shape) - 1) + (shape[-1],)


def _compatible(predicted: Shape, actual: Shape) -> bool:
    """Same rank, and every size ``predicted`` knows is ``actual``'s."""
    return len(predicted) == len(actual) and all(
        p is None or p == a for p, a in zip(predicted, actual, strict=True)
    )


def _agree(a: Shape, b: Shape) -> bool:
    """Same rank, and equal sizes wherever both know them."""
    return len(a) == len(b) and all(
        x is None or y is None or x == y for x, y in zip(a, b, strict=True)
    )


def _spec_shapes(layer: keras.layers.Layer, shape: Shape) -> list[Shape]:
    """The output shapes Keras predicts for an input of ``shape`` (as a functional model
    does: ``compute_output_shape`` where the layer has one, else a symbolic trace)."""
    spec = layer.compute_output_spec(keras.KerasTensor(shape))
    return [tuple(s.shape) for s in keras.tree.flatten(spec)]


def _constructor_arguments(cls: type) -> set[str]:
    """Names of the arguments ``cls.__init__`` takes besides ``self`` and ``**kwargs``."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in parameters if p.kind in kinds and p.name != "self"}


def _as_json(config: Any) -> Any:
    """``config`` as a ``.keras`` file stores it (JSON: tuples become lists)."""
    return json.loads(json.dumps(config))


def _assert_same_outputs(actual, expected, atol: float, what: str) -> None:
    actual, expected = as_numpy_list(actual), as_numpy_list(expected)
    assert len(actual) == len(expected), f"{what}: {len(actual)} outputs, not {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        np.testing.assert_allclose(a, e, rtol=0, atol=atol, err_msg=f"{what}, output {i}")


# ------------------------------------------------------------------------------- checks


def run_serialization_test(instance: Any) -> Any:
    """Check that ``instance``'s config round-trips; return the deserialised copy.

    ``type(instance).from_config(instance.get_config())`` must give an object of the
    same class with the same config, and ``serialize_keras_object`` -> JSON ->
    ``deserialize_keras_object`` (what a ``.keras`` file does) the same serialisation.
    A class defined outside Keras must be registered
    (``keras.saving.register_keras_serializable``) under its registered name, and its
    config must name every argument of its constructor (a config that leaves one out
    round-trips to itself, but the revived object has the default instead).
    """
    cls = type(instance)
    config = instance.get_config()
    if not cls.__module__.startswith("keras"):
        registered = keras.saving.get_registered_name(cls)
        assert keras.saving.get_registered_object(registered) is cls, (
            f"{cls.__qualname__} is not registered with keras.saving.register_keras_serializable"
        )
        missing = _constructor_arguments(cls) - set(config)
        assert not missing, f"get_config of {cls.__qualname__} leaves out {sorted(missing)}"
    clone = cls.from_config(config)
    assert type(clone) is cls
    assert _as_json(clone.get_config()) == _as_json(config), "get_config/from_config changed it"

    serialized = keras.saving.serialize_keras_object(instance)
    revived = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert type(revived) is cls
    assert _as_json(keras.saving.serialize_keras_object(revived)) == _as_json(serialized)
    return revived


def run_free_shape_test(
    model_or_layer: Callable, input_data: np.ndarray, atol: float = 1e-6
) -> list[Shape]:
    """Check that tracing with unknown batch and spatial sizes gives the eager outputs.

    A SavedModel signature has free H and W, so no layer may need static sizes. Returns
    the static output shapes TensorFlow infers in that graph.
    """
    spec = tf.TensorSpec(_free_shape(input_data.shape), tf.as_dtype(input_data.dtype))
    graph = tf.function(
        lambda x: model_or_layer(x, training=False), input_signature=[spec], autograph=False
    )
    traced = graph.get_concrete_function().structured_outputs
    _assert_same_outputs(
        graph(input_data), model_or_layer(input_data, training=False), atol, "traced graph"
    )
    return [tuple(t.shape) for t in tf.nest.flatten(traced)]


def run_layer_test(
    layer_cls: type[keras.layers.Layer],
    init_kwargs: dict[str, Any],
    input_data: np.ndarray,
    expected_output_shape: Shape | Sequence[Shape],
    *,
    expected_output: Any = None,
    expected_num_trainable_weights: int = 0,
    expected_num_non_trainable_weights: int = 0,
    run_training_check: bool = True,
    run_mixed_precision_check: bool = True,
    run_free_shape_check: bool = True,
    atol: float = 1e-6,
) -> keras.layers.Layer:
    """Build ``layer_cls(**init_kwargs)``, call it on ``input_data`` and check it all.

    * output shapes are ``expected_output_shape`` and Keras predicts them
      (``compute_output_spec``), also for unknown batch and spatial sizes (compatible
      with the real shapes);
    * outputs are ``expected_output`` (when given) within ``atol``;
    * the layer has the expected numbers of trainable and non-trainable weights;
    * `run_serialization_test`, and the revived layer with the same weights gives
      identical outputs;
    * training check: the inputs and every trainable weight get a finite gradient,
      and none of them an all-zero one;
    * mixed precision: built with ``dtype="mixed_float16"`` (so the constructor passes
      ``**kwargs`` on) it computes in float16, close to the float32 outputs;
    * `run_free_shape_test`: the traced graph with free sizes gives the same outputs
      and TensorFlow's static shapes agree with Keras' prediction for free sizes.

    Returns the layer.
    """
    layer = layer_cls(**init_kwargs)
    outputs = as_numpy_list(layer(input_data))
    expected_shapes = _shape_list(expected_output_shape)
    assert [o.shape for o in outputs] == expected_shapes, "output shapes"
    assert _spec_shapes(layer, input_data.shape) == expected_shapes, "compute_output_spec"
    free = _spec_shapes(layer, _free_shape(input_data.shape))
    assert all(_compatible(f, e) for f, e in zip(free, expected_shapes, strict=True)), (
        f"compute_output_spec for free sizes {free} contradicts the real {expected_shapes}"
    )
    if expected_output is not None:
        _assert_same_outputs(outputs, expected_output, atol, "expected output")
    assert len(layer.trainable_weights) == expected_num_trainable_weights
    assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights

    revived = run_serialization_test(layer)
    revived.set_weights(layer.get_weights())
    _assert_same_outputs(revived(input_data), outputs, 0.0, "revived layer")

    if run_training_check:
        x = tf.Variable(input_data)
        with tf.GradientTape() as tape:
            result = keras.tree.flatten(layer(x, training=True))
            # Random weights, so that no gradient cancels by symmetry.
            loss = sum(
                tf.reduce_sum(r * random_array(*r.shape, seed=i)) for i, r in enumerate(result)
            )
        sources = [x, *layer.trainable_weights]
        for source, grad in zip(sources, tape.gradient(loss, sources), strict=True):
            assert grad is not None, f"no gradient for {source.name}"
            grad = keras.ops.convert_to_numpy(grad)
            assert np.all(np.isfinite(grad)) and np.any(grad != 0), f"gradient of {source.name}"

    if run_mixed_precision_check:
        mixed = layer_cls(**init_kwargs, dtype="mixed_float16")
        half = as_numpy_list(mixed(input_data))
        assert mixed.compute_dtype == "float16"
        assert all(h.dtype == np.float16 for h in half), [h.dtype for h in half]
        if mixed.weights:
            mixed.set_weights(layer.get_weights())
            half = as_numpy_list(mixed(input_data))
        for h, o in zip(half, outputs, strict=True):
            np.testing.assert_allclose(h.astype("float32"), o, rtol=1e-2, atol=1e-2)

    if run_free_shape_check:
        traced = run_free_shape_test(layer, input_data, atol)
        assert len(traced) == len(free) and all(map(_agree, free, traced)), (
            f"compute_output_spec {free} disagrees with the traced graph's {traced}"
        )
    return layer


def run_model_test(
    model: keras.Model,
    input_data: np.ndarray,
    expected_output_shape: Shape | Sequence[Shape],
    *,
    expected_dtype: str = "float32",
    value_range: tuple[float, float] | None = None,
    run_free_shape_check: bool = False,
    atol: float = 1e-6,
) -> list[np.ndarray]:
    """Call ``model`` on ``input_data`` (inference) and check its outputs.

    Output shapes are ``expected_output_shape`` (one shape or a list, one per
    output), as ``compute_output_spec`` predicts too; every output is finite, of
    ``expected_dtype``, and within ``value_range`` (inclusive) when given.
    ``run_free_shape_check`` adds `run_free_shape_test`. Returns the outputs.
    """
    outputs = as_numpy_list(model(input_data, training=False))
    expected_shapes = _shape_list(expected_output_shape)
    assert [o.shape for o in outputs] == expected_shapes, "output shapes"
    specs = keras.tree.flatten(model.compute_output_spec(keras.KerasTensor(input_data.shape)))
    assert [tuple(s.shape) for s in specs] == expected_shapes, "compute_output_spec shapes"
    for i, o in enumerate(outputs):
        assert o.dtype == np.dtype(expected_dtype), f"output {i} is {o.dtype}"
        assert np.all(np.isfinite(o)), f"output {i} is not finite"
        if value_range is not None:
            lo, hi = value_range
            assert lo <= o.min() and o.max() <= hi, f"output {i} leaves {value_range}"
    if run_free_shape_check:
        run_free_shape_test(model, input_data, atol)
    return outputs


def run_model_saving_test(
    model: keras.Model, input_data: np.ndarray, atol: float = 0.0
) -> keras.Model:
    """Save ``model`` to a ``.keras`` file, load it back and return the loaded model.

    The loaded model must be of the same class, with the same config (so the
    ``from_config`` of every layer round-trips), the same weights by path (batch-norm
    statistics included) and the same inference outputs on ``input_data`` (identical
    by default: the same graph with the same weights).
    """
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, f"{model.name}.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    assert _as_json(loaded.get_config()) == _as_json(model.get_config()), "config changed"
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    for saved, restored in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(restored), keras.ops.convert_to_numpy(saved), saved.path
        )
    _assert_same_outputs(
        loaded(input_data, training=False), model(input_data, training=False), atol, "loaded"
    )
    return loaded


def gradient_norm(
    model: keras.Model, loss_of_output: Callable[[Any], Any], inputs: Any, training: bool = True
) -> float:
    """Global norm of d ``loss_of_output(model(inputs))`` / d trainable weights.

    Every trainable variable must get a gradient (not None) and all of it finite.
    """
    with tf.GradientTape() as tape:
        loss = loss_of_output(model(inputs, training=training))
    grads = tape.gradient(loss, model.trainable_variables)
    missing = [v.path for v, g in zip(model.trainable_variables, grads, strict=True) if g is None]
    assert not missing, f"no gradient for {missing}"
    assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(g))) for g in grads)
    return float(tf.linalg.global_norm(grads))
