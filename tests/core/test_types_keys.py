"""Store keys: the fast path of Sample.key / Probe.key equals the full image-path-stripping hash."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from safemlrm.core.hashing import content_hash
from safemlrm.core.types import ImagePart, ImageRef, Message, Probe, Sample, TextPart, _without_image_paths

texts = st.text(max_size=40)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), texts, st.sampled_from(["sha256", "path"]))
json_values = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["sha256", "path", "a", "c"]), inner, max_size=3)
    ),
    max_leaves=8,
)
image_refs = st.builds(ImageRef, path=texts, sha256=st.text(alphabet="0123456789abcdef", min_size=8, max_size=8))


def slow_key(model: Any) -> str:
    return content_hash(_without_image_paths(model.model_dump(mode="json")))


@settings(max_examples=200, deadline=None)
@given(
    prompt=texts,
    images=st.lists(image_refs, max_size=2),
    metadata=st.dictionaries(st.sampled_from(["sha256", "path", "note", "x"]), json_values, max_size=3),
)
def test_sample_key_matches_the_full_walk(prompt: str, images: list[ImageRef], metadata: dict[str, Any]) -> None:
    sample = Sample(id="s", dataset="d", instruction=prompt, prompt=prompt, images=tuple(images), metadata=metadata)
    assert sample.key == slow_key(sample)


@settings(max_examples=200, deadline=None)
@given(
    text=texts,
    images=st.lists(image_refs, max_size=2),
    params=st.dictionaries(st.sampled_from(["sha256", "path", "k"]), json_values, max_size=3),
)
def test_probe_key_matches_the_full_walk(text: str, images: list[ImageRef], params: dict[str, Any]) -> None:
    content = (TextPart(text=text), *(ImagePart(image=ref) for ref in images))
    probe = Probe(
        sample_key="k",
        sample_id="s",
        attack="a",
        attack_params=params,
        messages=(Message(role="user", content=content),),
    )
    assert probe.key == slow_key(probe)


def test_moving_an_image_keeps_the_key() -> None:
    def probe(path: str) -> Probe:
        part = ImagePart(image=ImageRef(path=path, sha256="ab" * 32))
        return Probe(sample_key="k", sample_id="s", attack="a", messages=(Message(role="user", content=(part,)),))

    assert probe("/a/x.png").key == probe("/b/y.png").key
    text_only = Probe(
        sample_key="k",
        sample_id="s",
        attack="a",
        messages=(Message(role="user", content=(TextPart(text='"sha256"'),)),),
    )
    assert text_only.key == slow_key(text_only)
