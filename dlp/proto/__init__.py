"""The Caffe-compatible protobuf schema (``caffe.proto``) and its generated module.

``from dlp.proto import caffe_pb2`` gives BVLC Caffe's messages (package ``caffe``)
plus DLP's extensions at field numbers >= 10000.
"""
