#!/usr/bin/env python3
"""Writes the Keras-HDF5 test fixtures of the Recurrent 3D-DenseUNet converter (src/models/rdu_keras.ts).

The weights are the golden tiny-preset parameters (test/golden/models/rdu.safetensors, `param.*`),
converted to the Keras layout by the INVERSE of the transforms in shared/MODELS.md §7, and written
with the groups and attributes Keras 2.2.4 writes (keras/engine/saving.py):

  test/fixtures/rdu_tiny_keras.h5          model.save(): root attrs keras_version/backend, group
                                           model_weights (attr layer_names, one group per layer of
                                           model.layers with attr weight_names, weightless layers
                                           included with an empty list) and optimizer_weights
  test/fixtures/rdu_tiny_keras_weights.h5  model.save_weights(): the same layer groups at the root
  test/fixtures/keras_bad/*.h5             tiny files for the reader's error cases

Only the weights are written (no model_config JSON: the converter never reads it). The layer names
are the ones TIA2020.py produces in a fresh Keras 2.2.4 session: explicit `conv1_1 … conv6_2`,
`final`, `pool1..3`, `up2`; auto-named `batch_normalization_N`, `conv_lst_m2d_N`,
`time_distributed_N` (up1 and up3: their `name=` sits on the wrapped Conv2DTranspose), etc.

Needs numpy and h5py only (Debian: apt-get install -y python3-h5py python3-numpy). Run from the
repository root:  /usr/bin/python3 scripts/make_keras_fixture.py
The files are committed; the tests never run this script.
"""
import json
import os
import struct
import sys

import h5py
import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
GOLDEN = os.path.join(ROOT, "test", "golden", "models", "rdu.safetensors")
OUT_DIR = os.path.join(ROOT, "test", "fixtures")
KERAS_VERSION = b"2.2.4"


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            continue
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[b:end], dtype="<f4").reshape(e["shape"]).copy()
    return out, meta


# ---- inverse transforms (engine / PyTorch NCDHW → Keras NHWDC), MODELS.md §7 -----------------------
def conv3d_to_keras(w):
    # engine [O, I, kD, kH, kW]; Keras Conv3D over (H, W, D): (kH, kW, kD, I, O).
    # Forward (converter): k.transpose(4, 3, 2, 0, 1).
    k = w.transpose(3, 4, 2, 1, 0)
    assert np.array_equal(k.transpose(4, 3, 2, 0, 1), w)
    return k


def convT_to_keras(w):
    # engine ConvTranspose3d [I, O, 1, kH, kW]; Keras (TimeDistributed) Conv2DTranspose (kH, kW, O, I).
    # Forward: k.transpose(3, 2, 0, 1)[:, :, None].
    assert w.shape[2] == 1
    k = w[:, :, 0].transpose(2, 3, 1, 0)
    assert np.array_equal(k.transpose(3, 2, 0, 1)[:, :, None], w)
    return k


def convlstm_to_keras(w, cin):
    # engine conv [4F, Cin+F, k, k] over cat(x_t, h); Keras kernel (k, k, Cin, 4F) and
    # recurrent_kernel (k, k, F, 4F), gates i, f, c, o in both. Forward:
    # concat([kernel, recurrent_kernel], axis=2).transpose(3, 2, 0, 1).
    full = w.transpose(2, 3, 1, 0)
    kernel, recurrent = full[:, :, :cin], full[:, :, cin:]
    assert np.array_equal(np.concatenate([kernel, recurrent], axis=2).transpose(3, 2, 0, 1), w)
    return kernel, recurrent


def model_layers(p, n_lstm):
    """[(keras layer name, [(weight name, array)])] in TIA2020.py's model.layers order."""
    uid = {}

    def auto(prefix):
        uid[prefix] = uid.get(prefix, 0) + 1
        return f"{prefix}_{uid[prefix]}"

    layers = [("input_1", [])]
    bn_names = []

    def conv(name):
        layers.append((name, [(f"{name}/kernel:0", conv3d_to_keras(p[f"{name}.weight"])),
                              (f"{name}/bias:0", p[f"{name}.bias"])]))

    def bn(engine):
        name = auto("batch_normalization")
        bn_names.append((engine, name))
        layers.append((name, [(f"{name}/gamma:0", p[f"{engine}.weight"]), (f"{name}/beta:0", p[f"{engine}.bias"]),
                              (f"{name}/moving_mean:0", p[f"{engine}.running_mean"]),
                              (f"{name}/moving_variance:0", p[f"{engine}.running_var"])]))

    def weightless(prefix, name=None):
        layers.append((name or auto(prefix), []))

    def block(k, j):  # conv{k}_{j} → BN → relu → concatenate
        conv(f"conv{k}_{j}")
        bn(f"bn{k}_{j}")
        weightless("activation")
        weightless("concatenate")

    def up(j, wrapper_name):
        w = p[f"up{j}.weight"]
        layers.append((wrapper_name, [(f"{wrapper_name}/kernel:0", convT_to_keras(w)), (f"{wrapper_name}/bias:0", p[f"up{j}.bias"])]))

    for lvl in (1, 2, 3):
        block(lvl, 1)
        block(lvl, 2)
        weightless("permute")
        weightless(None, f"pool{lvl}")
        if lvl < 3:
            weightless("permute")
        weightless("spatial_dropout3d")
    for j in range(1, n_lstm + 1):
        # `BatchNormalization()(ConvLSTM2D(...)(x))`: the BN object is created first (its number),
        # but the ConvLSTM comes first in the graph (model.layers order).
        w = p[f"lstm{j}.conv.weight"]
        cin = w.shape[1] - w.shape[0] // 4
        kernel, recurrent = convlstm_to_keras(w, cin)
        name = auto("conv_lst_m2d")
        layers.append((name, [(f"{name}/kernel:0", kernel), (f"{name}/recurrent_kernel:0", recurrent),
                              (f"{name}/bias:0", p[f"lstm{j}.conv.bias"])]))
        bn(f"bn_lstm{j}")
    up(1, auto("time_distributed"))  # TimeDistributed(Conv2DTranspose(..., name='up1'))
    weightless("permute")
    weightless("concatenate")
    block(4, 1)
    block(4, 2)
    weightless("permute")
    up(2, "up2")  # TimeDistributed(Conv2DTranspose(...), name='up2')
    weightless("permute")
    weightless("concatenate")
    block(5, 1)
    block(5, 2)
    weightless("permute")
    up(3, auto("time_distributed"))  # TimeDistributed(Conv2DTranspose(..., name='up3'))
    weightless("permute")
    weightless("concatenate")
    block(6, 1)
    block(6, 2)
    conv("final")
    return layers, bn_names


def save_attr(group, name, values):
    """Keras 2 save_attributes_to_hdf5_group (no chunking needed at this size): a list of byte
    strings becomes a fixed-length 'S' array; an empty list becomes an empty float64 array."""
    group.attrs[name] = values


def write_weights_group(g, layers):
    save_attr(g, "layer_names", [n.encode("utf8") for n, _ in layers])
    g.attrs["backend"] = b"tensorflow"
    g.attrs["keras_version"] = KERAS_VERSION
    for name, weights in layers:
        lg = g.create_group(name)
        save_attr(lg, "weight_names", [w.encode("utf8") for w, _ in weights])
        for wname, val in weights:
            val = np.ascontiguousarray(val, dtype=np.float32)
            d = lg.create_dataset(wname, val.shape, dtype=val.dtype)
            d[:] = val


def main():
    tensors, meta = read_safetensors(GOLDEN)
    case = json.loads(meta["case"])
    cfg = case["config"]
    if case["model"] != "rdu" or case["preset"] != "tiny":
        sys.exit(f"unexpected golden case {case['model']}/{case['preset']}")
    p = {k[len("param."):]: v for k, v in tensors.items() if k.startswith("param.")}
    layers, bn_names = model_layers(p, cfg["n_lstm"])
    n_weights = sum(len(ws) for _, ws in layers)
    assert n_weights == len(p) + cfg["n_lstm"], (n_weights, len(p))  # each ConvLSTM conv → 2 Keras tensors

    os.makedirs(OUT_DIR, exist_ok=True)
    full = os.path.join(OUT_DIR, "rdu_tiny_keras.h5")
    with h5py.File(full, "w") as f:  # keras.models.save_model layout
        f.attrs["keras_version"] = KERAS_VERSION
        f.attrs["backend"] = b"tensorflow"
        write_weights_group(f.create_group("model_weights"), layers)
        opt = f.create_group("optimizer_weights")  # present in compiled-model files; the reader ignores it
        save_attr(opt, "weight_names", [b"training/Adam/iterations:0"])
        opt.create_dataset("training/Adam/iterations:0", data=np.int64(0))
    weights_only = os.path.join(OUT_DIR, "rdu_tiny_keras_weights.h5")
    with h5py.File(weights_only, "w") as f:  # model.save_weights layout
        write_weights_group(f, layers)

    bad = os.path.join(OUT_DIR, "keras_bad")
    os.makedirs(bad, exist_ok=True)
    k = conv3d_to_keras(p["conv1_1.weight"])
    b = p["conv1_1.bias"]
    with h5py.File(os.path.join(bad, "missing_layer.h5"), "w") as f:  # layer_names names a group that is absent
        g = f.create_group("model_weights")
        write_weights_group(g, [("conv1_1", [("conv1_1/kernel:0", k), ("conv1_1/bias:0", b)])])
        save_attr(g, "layer_names", [b"conv1_1", b"batch_normalization_1"])
    with h5py.File(os.path.join(bad, "missing_weight.h5"), "w") as f:  # weight_names names an absent dataset
        write_weights_group(f, [("conv1_1", [("conv1_1/kernel:0", k)])])
        save_attr(f["conv1_1"], "weight_names", [b"conv1_1/kernel:0", b"conv1_1/bias:0"])
    with h5py.File(os.path.join(bad, "float16.h5"), "w") as f:  # a dtype the reader does not read
        write_weights_group(f, [("conv1_1", [])])
        save_attr(f["conv1_1"], "weight_names", [b"conv1_1/kernel:0"])
        f["conv1_1"].create_dataset("conv1_1/kernel:0", data=k.astype(np.float16))
    with h5py.File(os.path.join(bad, "not_keras.h5"), "w") as f:  # HDF5, but no layer_names anywhere
        f.create_dataset("x", data=np.arange(4, dtype=np.float32))
    for path in (full, weights_only):
        print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes, {len(layers)} layers, {n_weights} weights)")
    print(f"wrote {os.path.relpath(bad, ROOT)}/*.h5; BN mapping: {', '.join(f'{k}={e}' for e, k in bn_names)}")


if __name__ == "__main__":
    main()
