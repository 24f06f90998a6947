"""The test doubles fill the roles the product's components play.

mypy (run in CI over this file, see pyproject.toml) checks each assignment below against the
protocol's signatures; the test checks that the roles' members exist at run time too.
"""

from __future__ import annotations

from typing import get_type_hints

from qa.embedding import Embedder
from qa.protocols import Encoder, Reader
from qa.reading.onnx_reader import OnnxReader
from qa.reading.transformer import TransformerReader
from tests.conftest import HashEmbedder
from tests.evaluation.test_calibration import NameReader
from tests.reading.test_answers import FakeReader

ENCODERS: list[Encoder] = [HashEmbedder(), Embedder()]
READERS: list[Reader] = [FakeReader({}), NameReader(), OnnxReader(), TransformerReader()]


def _members(role: type) -> set[str]:
    own = {n for n in vars(role) if not n.startswith("_")}
    return own | set(get_type_hints(role))


def test_every_double_and_component_has_the_members_of_its_role() -> None:
    for role, players in ((Encoder, ENCODERS), (Reader, READERS)):
        members = _members(role)
        assert members, role
        for player in players:
            missing = {m for m in members if not hasattr(type(player), m) and m not in vars(player)}
            name = type(player).__name__
            assert not missing, f"{name} lacks {sorted(missing)} of {role.__name__}"
