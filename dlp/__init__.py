"""DLP — a desktop deep-learning platform for medical image segmentation.

Networks are Caffe networks (prototxt, caffemodel, solver, LMDB of Datums);
they run on DLP's own PyTorch engine with Caffe's layer semantics.
"""

from __future__ import annotations

__version__ = "0.1.0"
