"""dlp.data: medical images in, Caffe LMDB datasets out (torch-free, Qt-free).

- ``readers/``: ``read_image``/``read_images``/``read_dicom_series`` → ``ImageVolume``
  (DICOM via pydicom, NIfTI via nibabel, PNG/JPEG/TIFF via Pillow); ``write_nifti_labels``.
- ``lmdb_io``: ``DatumDB`` (reader), ``DatumWriter``, Datum encode/decode, mean files.
- ``sunnybrook`` / ``sunnybrook_layout``: the LV challenge layout and its quirks.
- ``rasterize``: polygons → masks (a pixel is inside iff its centre is).
- ``phantom``: a synthetic Sunnybrook-layout dataset.
- ``sources`` + ``builder``: ``build_dataset(source, out_dir, options, progress, cancel)``.
- ``preprocess``: ``preprocess_slice`` — the one transform shared with Deploy.
- ``manifest``: ``Manifest`` (``manifest.json``), read by Train and Deploy.
- ``command_dataset`` / ``command_phantom``: ``python -m dlp dataset|phantom``.
"""
