"""dlp.engine — Caffe networks executed by PyTorch with Caffe's layer semantics.

- :mod:`dlp.engine.net` — ``Net(net_param, phase)``: a NetParameter as an ``nn.Module``
  returning named blobs; ``loss``, ``learnable_params``, ``copy_from``, ``to_net_parameter``.
- :mod:`dlp.engine.registry` and :mod:`dlp.engine.layers` — one module per Caffe type.
- :mod:`dlp.engine.fillers` — Caffe's weight fillers.
- :mod:`dlp.engine.weights` — ``.caffemodel`` I/O, copying by layer name, state dicts.
- :mod:`dlp.engine.onnx_export` — deploy net + weights to ONNX.
- :mod:`dlp.engine.data_feed` / :mod:`dlp.engine.augment` — LMDB Data layers read in
  lock-step with paired augmentation and a prefetch thread.

Nothing is imported here, so ``import dlp.engine.solver`` stays cheap.
"""
