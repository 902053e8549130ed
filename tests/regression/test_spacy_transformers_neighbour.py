"""Issue 27: stream_trf in a process where spacy-transformers was loaded first.

spacy-transformers registers ``Doc._.trf_data`` (``default=None``) when it is imported. stream_trf
used to check for that name before registering its own attributes, so every stream_trf
pipeline then failed with spaCy's E047 on ``doc._.trf_outputs``; and the two libraries used the
same name for different objects."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from spacy.tokens import Doc

from stream_trf.errors import ExtensionConflict
from stream_trf.pipeline import extensions

# What spacy-transformers 1.x does at import (pipeline_component.install_extensions), then a
# stream_trf pipeline, all in a fresh interpreter: nothing of stream_trf is registered yet.
NEIGHBOUR_FIRST = textwrap.dedent(
    """
    import json, sys
    from spacy.tokens import Doc
    if not Doc.has_extension("trf_data"):
        Doc.set_extension("trf_data", default=None)
    theirs = object()

    import stream_trf
    nlp = stream_trf.load(sys.argv[1])
    doc = nlp.make_doc("Two sentences here. And a second one!")
    doc._.trf_data = theirs          # their pipeline's object on the same doc
    doc = nlp(doc)
    print(json.dumps({
        "pieces": doc._.trf_word_pieces_,
        "alignment": doc._.trf_alignment,
        "rows": len(doc._.trf_last_hidden_state),
        "tensor": list(doc.tensor.shape),
        "vector": len(doc.vector),
        "theirs_kept": doc._.trf_data is theirs,
        "fresh_doc_trf_data": nlp("x")._.trf_data,
    }))
    """
)


def test_a_pipeline_runs_after_spacy_transformers_registered_trf_data(tiny_models) -> None:
    done = subprocess.run(
        [sys.executable, "-c", NEIGHBOUR_FIRST, str(tiny_models["bert"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["pieces"][0] == "[CLS]" and got["pieces"][-1] == "[SEP]"
    assert len(got["alignment"]) == got["tensor"][0] > 0
    assert got["rows"] == len(got["pieces"])
    assert got["vector"] == got["tensor"][1]
    # stream_trf never writes into their attribute: their object stays, a new doc has none
    assert got["theirs_kept"] is True
    assert got["fresh_doc_trf_data"] is None


def test_installing_again_is_a_no_op() -> None:
    before = Doc.get_extension("trf_word_pieces")
    extensions.install_extensions()
    extensions.install_extensions()
    assert Doc.get_extension("trf_word_pieces") == before


def test_a_foreign_getter_under_one_of_our_names_is_a_typed_error() -> None:
    ours = Doc.get_extension("trf_alignment")
    Doc.set_extension("trf_alignment", getter=lambda doc: "someone else's", force=True)
    try:
        with pytest.raises(ExtensionConflict, match="trf_alignment"):
            extensions.install_extensions()
    finally:
        Doc.set_extension("trf_alignment", getter=ours[2], force=True)
    extensions.install_extensions()  # ours again: fine


def test_a_missing_attribute_is_registered_on_its_own() -> None:
    """One by one: an attribute removed (or never registered) comes back although the others
    are there already."""
    Doc.remove_extension("trf_windowed_wordpieces")
    extensions.install_extensions()
    assert Doc.has_extension("trf_windowed_wordpieces")
