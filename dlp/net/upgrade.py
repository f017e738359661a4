"""Upgrade old Caffe nets and solvers to the current format, as Caffe's upgrade_proto does.

The passes run in Caffe's order (``UpgradeNetAsNeeded``):

1. V0 → V1: flat ``layers { layer { ... } }`` definitions become V1 layers; V0
   ``padding`` layers are folded into the convolution/pooling layer they feed.
2. Data transformation: ``scale``/``mean_file``/``crop_size``/``mirror`` written in a
   data layer's own parameters move to ``transform_param``.
3. V1 → V2: ``layers`` with enum types become ``layer`` with string types;
   ``blobs_lr``/``weight_decay``/``param`` become ``ParamSpec`` entries.
4. Inputs: the deprecated ``input`` + ``input_dim``/``input_shape`` become an
   ``Input`` layer at the front of the net.
5. BatchNorm: three ``param`` entries (the old way to freeze its statistics) get
   ``lr_mult: 0`` and ``decay_mult: 0``.

Each pass returns a new message; the input is never modified.
"""

from __future__ import annotations

from dlp.errors import InputError
from dlp.proto import caffe_pb2

V1 = caffe_pb2.V1LayerParameter


class UpgradeError(InputError):
    """An old-format net or solver cannot be upgraded; the message names the layer."""


# V1 enum → V2 type string (Caffe's UpgradeV1LayerType).
V1_TYPE_NAMES: dict[int, str] = {
    V1.NONE: "",
    V1.ABSVAL: "AbsVal",
    V1.ACCURACY: "Accuracy",
    V1.ARGMAX: "ArgMax",
    V1.BNLL: "BNLL",
    V1.CONCAT: "Concat",
    V1.CONTRASTIVE_LOSS: "ContrastiveLoss",
    V1.CONVOLUTION: "Convolution",
    V1.DATA: "Data",
    V1.DECONVOLUTION: "Deconvolution",
    V1.DROPOUT: "Dropout",
    V1.DUMMY_DATA: "DummyData",
    V1.EUCLIDEAN_LOSS: "EuclideanLoss",
    V1.ELTWISE: "Eltwise",
    V1.EXP: "Exp",
    V1.FLATTEN: "Flatten",
    V1.HDF5_DATA: "HDF5Data",
    V1.HDF5_OUTPUT: "HDF5Output",
    V1.HINGE_LOSS: "HingeLoss",
    V1.IM2COL: "Im2col",
    V1.IMAGE_DATA: "ImageData",
    V1.INFOGAIN_LOSS: "InfogainLoss",
    V1.INNER_PRODUCT: "InnerProduct",
    V1.LRN: "LRN",
    V1.MEMORY_DATA: "MemoryData",
    V1.MULTINOMIAL_LOGISTIC_LOSS: "MultinomialLogisticLoss",
    V1.MVN: "MVN",
    V1.POOLING: "Pooling",
    V1.POWER: "Power",
    V1.RELU: "ReLU",
    V1.SIGMOID: "Sigmoid",
    V1.SIGMOID_CROSS_ENTROPY_LOSS: "SigmoidCrossEntropyLoss",
    V1.SILENCE: "Silence",
    V1.SOFTMAX: "Softmax",
    V1.SOFTMAX_LOSS: "SoftmaxWithLoss",
    V1.SPLIT: "Split",
    V1.SLICE: "Slice",
    V1.TANH: "TanH",
    V1.WINDOW_DATA: "WindowData",
    V1.THRESHOLD: "Threshold",
}

# V0 type string → V1 enum (Caffe's UpgradeV0LayerType).
V0_TYPES: dict[str, int] = {
    "accuracy": V1.ACCURACY,
    "bnll": V1.BNLL,
    "concat": V1.CONCAT,
    "conv": V1.CONVOLUTION,
    "data": V1.DATA,
    "dropout": V1.DROPOUT,
    "euclidean_loss": V1.EUCLIDEAN_LOSS,
    "flatten": V1.FLATTEN,
    "hdf5_data": V1.HDF5_DATA,
    "hdf5_output": V1.HDF5_OUTPUT,
    "im2col": V1.IM2COL,
    "images": V1.IMAGE_DATA,
    "infogain_loss": V1.INFOGAIN_LOSS,
    "innerproduct": V1.INNER_PRODUCT,
    "lrn": V1.LRN,
    "multinomial_logistic_loss": V1.MULTINOMIAL_LOGISTIC_LOSS,
    "pool": V1.POOLING,
    "relu": V1.RELU,
    "sigmoid": V1.SIGMOID,
    "softmax": V1.SOFTMAX,
    "softmax_loss": V1.SOFTMAX_LOSS,
    "split": V1.SPLIT,
    "tanh": V1.TANH,
    "window_data": V1.WINDOW_DATA,
}

# The old solver_type enum → the type string (Caffe's UpgradeSolverType).
SOLVER_TYPE_NAMES: dict[int, str] = {
    caffe_pb2.SolverParameter.SGD: "SGD",
    caffe_pb2.SolverParameter.NESTEROV: "Nesterov",
    caffe_pb2.SolverParameter.ADAGRAD: "AdaGrad",
    caffe_pb2.SolverParameter.RMSPROP: "RMSProp",
    caffe_pb2.SolverParameter.ADADELTA: "AdaDelta",
    caffe_pb2.SolverParameter.ADAM: "Adam",
}

# Per-type parameter messages that V1 and V2 layers share under the same field name.
_V1_PARAM_FIELDS = tuple(
    field.name for field in V1.DESCRIPTOR.fields
    if field.name.endswith("_param")
    and field.name in caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
)

# Data layers whose own parameters carried transformation fields before transform_param.
_TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")
_V1_DATA_PARAMS = {V1.DATA: "data_param", V1.IMAGE_DATA: "image_data_param",
                   V1.WINDOW_DATA: "window_data_param"}
_V2_DATA_PARAMS = {"Data": "data_param", "ImageData": "image_data_param",
                   "WindowData": "window_data_param"}


def _where(source: str, layer_name: str) -> str:
    return f'{source}: layer "{layer_name}"' if layer_name else f"{source}: unnamed layer"


# ---------------------------------------------------------------------------
# Detection


def is_v0_net(net: caffe_pb2.NetParameter) -> bool:
    """Whether ``net`` uses the original flat V0 layer definitions."""
    return any(layer.HasField("layer") for layer in net.layers)


def is_v1_net(net: caffe_pb2.NetParameter) -> bool:
    """Whether ``net`` uses deprecated ``layers`` (V1, or V0 wrapped in V1) definitions."""
    return len(net.layers) > 0


def needs_data_upgrade(net: caffe_pb2.NetParameter) -> bool:
    """Whether a data layer keeps transformation fields outside ``transform_param``."""
    for layer in net.layers:
        field = _V1_DATA_PARAMS.get(layer.type)
        if field and _has_transform_fields(getattr(layer, field)):
            return True
    for layer in net.layer:
        field = _V2_DATA_PARAMS.get(layer.type)
        if field and layer.HasField(field) and _has_transform_fields(getattr(layer, field)):
            return True
    return False


def has_deprecated_inputs(net: caffe_pb2.NetParameter) -> bool:
    """Whether the net declares inputs with ``input``/``input_dim``/``input_shape``."""
    return len(net.input) > 0 or len(net.input_dim) > 0 or len(net.input_shape) > 0


def needs_upgrade(net: caffe_pb2.NetParameter) -> bool:
    """Whether :func:`upgrade_net` would change ``net``."""
    return (is_v1_net(net) or needs_data_upgrade(net) or has_deprecated_inputs(net)
            or _needs_batch_norm_upgrade(net))


# ---------------------------------------------------------------------------
# V0 → V1


def _fold_v0_padding(net: caffe_pb2.NetParameter, source: str) -> caffe_pb2.NetParameter:
    """Remove V0 ``padding`` layers, moving their pad into the conv/pool that reads them."""
    padding_by_top: dict[str, caffe_pb2.V1LayerParameter] = {}
    result = caffe_pb2.NetParameter()
    result.CopyFrom(net)
    del result.layers[:]
    for wrapper in net.layers:
        v0 = wrapper.layer
        if v0.type == "padding":
            if len(wrapper.bottom) != 1 or len(wrapper.top) != 1:
                raise UpgradeError(f"{_where(source, v0.name)}: a padding layer needs exactly "
                                   "one bottom and one top")
            padding_by_top[wrapper.top[0]] = wrapper
            continue
        layer = result.layers.add()
        layer.CopyFrom(wrapper)
        for index, bottom in enumerate(layer.bottom):
            padding = padding_by_top.get(bottom)
            if padding is None:
                continue
            if layer.layer.type not in ("conv", "pool"):
                raise UpgradeError(
                    f'{_where(source, v0.name)}: reads padding layer "{padding.layer.name}" '
                    f'but only conv and pool layers can take padding, not "{v0.type}"')
            layer.layer.pad = padding.layer.pad
            layer.bottom[index] = padding.bottom[0]
    return result


def _v0_to_v1_layer(wrapper: caffe_pb2.V1LayerParameter, source: str
                    ) -> caffe_pb2.V1LayerParameter:
    v0 = wrapper.layer
    out = caffe_pb2.V1LayerParameter()
    out.bottom.extend(wrapper.bottom)
    out.top.extend(wrapper.top)
    if v0.HasField("name"):
        out.name = v0.name
    if v0.type not in V0_TYPES:
        raise UpgradeError(f'{_where(source, v0.name)}: unknown V0 layer type "{v0.type}"; '
                           f"expected one of {', '.join(sorted(V0_TYPES))}")
    kind = V0_TYPES[v0.type]
    out.type = kind
    out.blobs.extend(v0.blobs)
    out.blobs_lr.extend(v0.blobs_lr)
    out.weight_decay.extend(v0.weight_decay)

    def copy(src_field: str, dst, dst_field: str | None = None) -> None:
        if v0.HasField(src_field):
            value = getattr(v0, src_field)
            target = dst_field or src_field
            if hasattr(value, "CopyFrom"):
                getattr(dst, target).CopyFrom(value)
            else:
                setattr(dst, target, value)

    if kind == V1.CONVOLUTION:
        conv = out.convolution_param
        copy("num_output", conv)
        copy("biasterm", conv, "bias_term")
        copy("weight_filler", conv)
        copy("bias_filler", conv)
        if v0.HasField("pad"):
            conv.pad.append(v0.pad)
        if v0.HasField("kernelsize"):
            conv.kernel_size.append(v0.kernelsize)
        copy("group", conv)
        if v0.HasField("stride"):
            conv.stride.append(v0.stride)
    elif kind == V1.INNER_PRODUCT:
        inner = out.inner_product_param
        copy("num_output", inner)
        copy("biasterm", inner, "bias_term")
        copy("weight_filler", inner)
        copy("bias_filler", inner)
    elif kind == V1.POOLING:
        pool = out.pooling_param
        copy("kernelsize", pool, "kernel_size")
        copy("stride", pool)
        copy("pad", pool)
        copy("pool", pool)
    elif kind == V1.DROPOUT:
        copy("dropout_ratio", out.dropout_param)
    elif kind == V1.LRN:
        lrn = out.lrn_param
        for name in ("local_size", "alpha", "beta", "k"):
            copy(name, lrn)
    elif kind == V1.DATA:
        data = out.data_param
        copy("source", data)
        copy("batchsize", data, "batch_size")
        copy("rand_skip", data)
        copy("scale", out.transform_param)
        copy("meanfile", out.transform_param, "mean_file")
        copy("cropsize", out.transform_param, "crop_size")
        copy("mirror", out.transform_param)
    elif kind == V1.IMAGE_DATA:
        image = out.image_data_param
        copy("source", image)
        copy("batchsize", image, "batch_size")
        copy("rand_skip", image)
        copy("shuffle_images", image, "shuffle")
        copy("new_height", image)
        copy("new_width", image)
        copy("scale", out.transform_param)
        copy("meanfile", out.transform_param, "mean_file")
        copy("cropsize", out.transform_param, "crop_size")
        copy("mirror", out.transform_param)
    elif kind == V1.WINDOW_DATA:
        window = out.window_data_param
        copy("source", window)
        copy("batchsize", window, "batch_size")
        copy("det_fg_threshold", window, "fg_threshold")
        copy("det_bg_threshold", window, "bg_threshold")
        copy("det_fg_fraction", window, "fg_fraction")
        copy("det_context_pad", window, "context_pad")
        copy("det_crop_mode", window, "crop_mode")
        copy("scale", out.transform_param)
        copy("meanfile", out.transform_param, "mean_file")
        copy("cropsize", out.transform_param, "crop_size")
        copy("mirror", out.transform_param)
    elif kind == V1.HDF5_DATA:
        copy("source", out.hdf5_data_param)
        copy("batchsize", out.hdf5_data_param, "batch_size")
    elif kind == V1.HDF5_OUTPUT:
        copy("hdf5_output_param", out)
    elif kind == V1.CONCAT:
        copy("concat_dim", out.concat_param)
    elif kind == V1.INFOGAIN_LOSS:
        copy("source", out.infogain_loss_param)
    return out


def upgrade_v0_net(net: caffe_pb2.NetParameter, *, source: str = "<net>"
                   ) -> caffe_pb2.NetParameter:
    """V0 layer definitions → V1 (padding layers folded into their consumer)."""
    folded = _fold_v0_padding(net, source)
    result = caffe_pb2.NetParameter()
    result.CopyFrom(folded)
    del result.layers[:]
    for wrapper in folded.layers:
        if wrapper.HasField("layer"):
            result.layers.append(_v0_to_v1_layer(wrapper, source))
        else:
            result.layers.add().CopyFrom(wrapper)
    return result


# ---------------------------------------------------------------------------
# Data transformation parameters


def _has_transform_fields(params) -> bool:
    return any(params.HasField(name) for name in _TRANSFORM_FIELDS)


def _move_transform_fields(params, transform: caffe_pb2.TransformationParameter) -> None:
    for name in _TRANSFORM_FIELDS:
        if params.HasField(name):
            setattr(transform, name, getattr(params, name))
            params.ClearField(name)


def upgrade_data_transformation(net: caffe_pb2.NetParameter) -> caffe_pb2.NetParameter:
    """Move data layers' ``scale``/``mean_file``/``crop_size``/``mirror`` to transform_param.

    Caffe applies this to V1 layers; DLP also applies it to V2 ``Data``/``ImageData``/
    ``WindowData`` layers, where Caffe would silently ignore the deprecated fields.
    """
    result = caffe_pb2.NetParameter()
    result.CopyFrom(net)
    for layer in result.layers:
        field = _V1_DATA_PARAMS.get(layer.type)
        if field and layer.HasField(field):
            _move_transform_fields(getattr(layer, field), layer.transform_param)
    for layer in result.layer:
        field = _V2_DATA_PARAMS.get(layer.type)
        if field and layer.HasField(field):
            _move_transform_fields(getattr(layer, field), layer.transform_param)
    return result


# ---------------------------------------------------------------------------
# V1 → V2


def upgrade_v1_layer(v1: caffe_pb2.V1LayerParameter, *, source: str = "<net>"
                     ) -> caffe_pb2.LayerParameter:
    """One V1 layer → a V2 ``LayerParameter`` (Caffe's UpgradeV1LayerParameter)."""
    if v1.HasField("layer"):
        raise UpgradeError(f"{_where(source, v1.name)}: still has V0 fields; upgrade V0 first")
    layer = caffe_pb2.LayerParameter()
    if v1.HasField("name"):
        layer.name = v1.name
    layer.bottom.extend(v1.bottom)
    layer.top.extend(v1.top)
    layer.include.extend(v1.include)
    layer.exclude.extend(v1.exclude)
    if v1.HasField("type"):
        layer.type = V1_TYPE_NAMES[v1.type]
    layer.blobs.extend(v1.blobs)

    def param(index: int) -> caffe_pb2.ParamSpec:
        while len(layer.param) <= index:
            layer.param.add()
        return layer.param[index]

    for index, name in enumerate(v1.param):
        param(index).name = name
    for index, mode in enumerate(v1.blob_share_mode):
        param(index).share_mode = mode
    for index, lr in enumerate(v1.blobs_lr):
        param(index).lr_mult = lr
    for index, decay in enumerate(v1.weight_decay):
        param(index).decay_mult = decay
    layer.loss_weight.extend(v1.loss_weight)
    for field in _V1_PARAM_FIELDS:
        if v1.HasField(field):
            getattr(layer, field).CopyFrom(getattr(v1, field))
    return layer


def upgrade_v1_net(net: caffe_pb2.NetParameter, *, source: str = "<net>"
                   ) -> caffe_pb2.NetParameter:
    """V1 ``layers`` → V2 ``layer`` (Caffe's UpgradeV1Net)."""
    if len(net.layer) and len(net.layers):
        raise UpgradeError(f"{source}: the net mixes new 'layer' and old 'layers' definitions; "
                           "use one of them")
    result = caffe_pb2.NetParameter()
    result.CopyFrom(net)
    result.ClearField("layers")
    for v1 in net.layers:
        result.layer.append(upgrade_v1_layer(v1, source=source))
    return result


# ---------------------------------------------------------------------------
# Deprecated net inputs


def inputs_to_input_layer(net: caffe_pb2.NetParameter, *, source: str = "<net>",
                          name: str = "input") -> caffe_pb2.NetParameter:
    """Turn ``input`` + ``input_dim``/``input_shape`` into an ``Input`` layer at the front.

    Follows Caffe's UpgradeNetInput: ``input_dim`` holds four numbers (N, C, H, W) per
    input; ``input_shape`` holds one shape per input.  Inputs without any shape (old
    .caffemodels) are simply dropped.
    """
    result = caffe_pb2.NetParameter()
    result.CopyFrom(net)
    inputs = list(net.input)
    if net.input_shape and len(net.input_shape) != len(inputs):
        raise UpgradeError(f"{source}: {len(inputs)} input(s) but {len(net.input_shape)} "
                           "input_shape entries; expected one input_shape per input")
    if not net.input_shape and net.input_dim and len(net.input_dim) != 4 * len(inputs):
        raise UpgradeError(f"{source}: {len(inputs)} input(s) but {len(net.input_dim)} "
                           f"input_dim values; expected 4 per input ({4 * len(inputs)})")
    if net.input_shape or net.input_dim:
        layer = caffe_pb2.LayerParameter(name=name, type="Input")
        for index, blob in enumerate(inputs):
            layer.top.append(blob)
            shape = layer.input_param.shape.add()
            if net.input_shape:
                shape.CopyFrom(net.input_shape[index])
            else:
                shape.dim.extend(net.input_dim[4 * index: 4 * index + 4])
        result.ClearField("layer")
        result.layer.append(layer)
        result.layer.extend(net.layer)
    for field in ("input", "input_shape", "input_dim"):
        result.ClearField(field)
    return result


# ---------------------------------------------------------------------------
# BatchNorm


def _needs_batch_norm_upgrade(net: caffe_pb2.NetParameter) -> bool:
    return any(layer.type == "BatchNorm" and len(layer.param) == 3 for layer in net.layer)


def upgrade_batch_norm(net: caffe_pb2.NetParameter) -> caffe_pb2.NetParameter:
    """Old BatchNorm definitions froze their three statistics blobs with three params."""
    result = caffe_pb2.NetParameter()
    result.CopyFrom(net)
    for layer in result.layer:
        if layer.type == "BatchNorm" and len(layer.param) == 3:
            for spec in layer.param:
                spec.lr_mult = 0.0
                spec.decay_mult = 0.0
    return result


# ---------------------------------------------------------------------------
# Whole nets and solvers


def upgrade_net(net: caffe_pb2.NetParameter, *, source: str = "<net>",
                convert_inputs: bool = True) -> caffe_pb2.NetParameter:
    """Upgrade ``net`` to the current format as Caffe does when it reads a net.

    ``convert_inputs=False`` keeps the deprecated ``input``/``input_dim`` fields as
    written.  The result is a new message; ``net`` is not modified.
    """
    result = caffe_pb2.NetParameter()
    result.CopyFrom(net)
    if is_v0_net(result):
        result = upgrade_v0_net(result, source=source)
    if needs_data_upgrade(result):
        result = upgrade_data_transformation(result)
    if is_v1_net(result):
        result = upgrade_v1_net(result, source=source)
    if convert_inputs and has_deprecated_inputs(result):
        result = inputs_to_input_layer(result, source=source)
    if _needs_batch_norm_upgrade(result):
        result = upgrade_batch_norm(result)
    return result


def upgrade_solver(solver: caffe_pb2.SolverParameter, *, source: str = "<solver>"
                   ) -> caffe_pb2.SolverParameter:
    """``solver_type`` enum → ``type`` string; inline nets upgraded too."""
    result = caffe_pb2.SolverParameter()
    result.CopyFrom(solver)
    if result.HasField("solver_type"):
        name = SOLVER_TYPE_NAMES[result.solver_type]
        if result.HasField("type") and result.type != name:
            old = caffe_pb2.SolverParameter.SolverType.Name(result.solver_type)
            raise UpgradeError(f'{source}: solver_type {old} contradicts type "{result.type}"; '
                               "give only type")
        result.type = name
        result.ClearField("solver_type")
    if result.HasField("net_param"):
        result.net_param.CopyFrom(upgrade_net(result.net_param, source=f"{source}: net_param"))
    if result.HasField("train_net_param"):
        result.train_net_param.CopyFrom(
            upgrade_net(result.train_net_param, source=f"{source}: train_net_param"))
    for index, test_net in enumerate(result.test_net_param):
        test_net.CopyFrom(upgrade_net(test_net, source=f"{source}: test_net_param[{index}]"))
    return result
