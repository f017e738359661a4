"""Fixtures of the deploy tests: the trained phantom model (see model_support)."""

from __future__ import annotations

import pytest

from tests.deploy.model_support import TrainedModel, get_trained_model


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> TrainedModel:
    return get_trained_model(tmp_path_factory)


@pytest.fixture(scope="session")
def session(trained_model):
    from dlp.deploy.session import InferenceSession

    s = InferenceSession.load(trained_model.deploy_net, trained_model.weights,
                              trained_model.labels, manifest=trained_model.manifest)
    yield s
    s.close()
