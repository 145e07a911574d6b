"""Properties checked with Hypothesis where a rule says more than examples do.

* preprocessing equals open_clip's eval transform for any image size, resize mode and colour mode;
* the app's tokenizer equals open_clip's on arbitrary Unicode text;
* the date filters select exactly ``after <= date < before``, bounds included/excluded as documented;
* the fingerprint changes with any single byte changed in its head or tail region, and with the size.

(Query parsing properties live in tests/unit/test_query_language.py.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from desktop_app.library.fingerprint import BLOCK, fingerprint
from desktop_app.pack import ImageSettings
from desktop_app.preprocess import ImagePreprocessor

FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
OPENAI = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


# --------------------------------------------------------------------------- preprocessing


def _image(width: int, height: int, mode: str, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")
    if mode == "RGB":
        return rgb
    if mode == "P":
        return rgb.quantize(16)
    return rgb.convert(mode)


@FEW
@given(
    width=st.integers(1, 400),
    height=st.integers(1, 400),
    size=st.sampled_from([224, 32, (48, 40), (40, 56)]),
    resize_mode=st.sampled_from(["shortest", "longest", "squash"]),
    interpolation=st.sampled_from(["bicubic", "bilinear"]),
    colour=st.sampled_from(["RGB", "L", "RGBA", "LA", "P", "CMYK", "I;16"]),
    seed=st.integers(0, 2**16),
)
def test_preprocessing_equals_open_clip_for_any_size_and_mode(width, height, size, resize_mode, interpolation, colour, seed):
    """Bit-identical to open_clip's eval transform of the image converted to RGB (RGB and L go to open_clip
    as they are: it converts after resizing, which agrees for them; other modes are converted first, as the
    app does on purpose, see preprocess.ImagePreprocessor)."""
    torch = pytest.importorskip("torch")
    open_clip = pytest.importorskip("open_clip")
    from desktop_app.preprocess import to_rgb

    hw = (size, size) if isinstance(size, int) else size
    if resize_mode == "shortest":
        assume(max(width, height) / min(width, height) < 20)  # open_clip's own long edge would be huge
    if resize_mode == "longest":  # open_clip rounds a side to 0 pixels and crashes (tested apart in test_preprocess_parity)
        ratio = max(height / hw[0], width / hw[1])
        assume(round(height / ratio) >= 1 and round(width / ratio) >= 1)
    image = _image(width, height, colour, seed)
    ours = ImagePreprocessor(ImageSettings(size=hw, resize_mode=resize_mode, interpolation=interpolation,
                                           mean=OPENAI[0], std=OPENAI[1]))
    reference = open_clip.image_transform(size, is_train=False, mean=OPENAI[0], std=OPENAI[1],
                                          resize_mode=resize_mode, interpolation=interpolation)
    given_to_open_clip = image if colour in ("RGB", "L") else to_rgb(image)
    with torch.no_grad():
        expected = reference(given_to_open_clip).numpy()
    got = ours([image])[0]
    assert got.shape == expected.shape == (3, *hw)
    assert float(np.abs(got - expected).max()) == 0.0


# --------------------------------------------------------------------------- tokenizer


@pytest.fixture(scope="module")
def clip_tokenizers(tmp_path_factory):
    open_clip = pytest.importorskip("open_clip")
    from desktop_app.text_tokenizer import TextTokenizer
    from model_training.tokenizer_export import write_tokenizer

    oc = open_clip.get_tokenizer("ViT-B-32")
    out = tmp_path_factory.mktemp("tok")
    settings_ = write_tokenizer(oc, out)
    return oc, TextTokenizer(out / "tokenizer.json", settings_)


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.text(max_size=60), min_size=1, max_size=4))
def test_tokenizer_equals_open_clip_on_any_unicode(clip_tokenizers, texts):
    oc, ours = clip_tokenizers
    theirs = oc(texts).numpy()
    mine = ours.encode(texts)
    assert mine.dtype == np.int64 and mine.shape == theirs.shape
    for text, a, b in zip(texts, mine, theirs):
        assert a.tolist() == b.tolist(), repr(text)


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(
        st.one_of(
            st.characters(min_codepoint=0, max_codepoint=0x7F),
            st.sampled_from(["&amp;", "&amp;amp;amp;", "&lt;b&gt;", "&#39;", "<", "\r\n", "\x1b[31m", "&"]),
        ),
        max_size=30,
    ).map("".join)
)
def test_cleaning_without_ftfy_is_open_clips_cleaning_for_plain_ascii(text):
    """The tokenizer skips ftfy for printable ASCII without "&" (most queries): its cleaning must
    still be open_clip's, ftfy and all, for every ASCII text (control characters and entities included)."""
    import html

    import ftfy

    from desktop_app.text_tokenizer import basic_clean

    assert basic_clean(text) == html.unescape(html.unescape(ftfy.fix_text(text))).strip()


# --------------------------------------------------------------------------- date filters


@pytest.fixture
def catalogue(tmp_path):
    from desktop_app.library.catalogue import Catalogue, Folder

    cat = Catalogue(tmp_path / "catalogue.db")
    with cat.session() as s, s.begin():
        s.add(Folder(id=1, path=str(tmp_path), added_at=0.0))
    yield cat
    cat.close()


BOUND = 1_620_122_400  # 2021-05-04 10:00:00 on the wall clock


@FEW
@given(
    offsets=st.lists(st.tuples(st.integers(-3, 3) | st.integers(-10**6, 10**6), st.booleans()), min_size=1, max_size=12),
    after=st.none() | st.integers(-2, 2),
    before=st.none() | st.integers(-2, 4),
)
def test_date_filters_select_exactly_after_inclusive_before_exclusive(catalogue, offsets, after, before):
    from sqlalchemy import delete, select

    from desktop_app.library.catalogue import Photo
    from desktop_app.library.search import Filters, photo_conditions

    with catalogue.session() as s, s.begin():
        s.execute(delete(Photo))
        for i, (offset, exif) in enumerate(offsets):
            moment = float(BOUND + offset)
            # EXIF time when there is one, else the file's time: the date the filters read
            s.add(Photo(id=i + 1, folder_id=1, path=f"/p/{i}.jpg", size=1, mtime_ns=0, fingerprint=str(i),
                        taken_at=moment if exif else None, file_time=moment if not exif else moment + 10**7,
                        indexed_at=0.0))
    lo = None if after is None else float(BOUND + after)
    hi = None if before is None else float(BOUND + before)
    with catalogue.session() as s:
        got = set(s.scalars(select(Photo.id).where(*photo_conditions(Filters(after=lo, before=hi)))))
    want = {i + 1 for i, (offset, _) in enumerate(offsets)
            if (lo is None or BOUND + offset >= lo) and (hi is None or BOUND + offset < hi)}
    assert got == want


# --------------------------------------------------------------------------- fingerprint


def _write(directory: str, name: str, data: bytes) -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


@settings(max_examples=40, deadline=None)
@given(
    size=st.sampled_from([1, 2, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK - 1, 2 * BLOCK, 2 * BLOCK + 1])
    | st.integers(1, 3 * BLOCK + 7),
    where=st.floats(0, 1, exclude_max=True),
    region=st.sampled_from(["head", "tail"]),
    flip=st.integers(1, 255),
    seed=st.integers(0, 2**16),
)
def test_fingerprint_changes_with_any_byte_of_its_head_or_tail(size, where, region, flip, seed):
    data = bytearray(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    if region == "head":
        lo, hi = 0, min(size, BLOCK)
    else:
        lo, hi = max(BLOCK, size - BLOCK), size
    assume(hi > lo)
    offset = lo + int(where * (hi - lo))
    with tempfile.TemporaryDirectory() as d:
        original = fingerprint(_write(d, "a", bytes(data)))
        data[offset] ^= flip
        changed = fingerprint(_write(d, "b", bytes(data)))
    assert changed != original, (size, offset)


@settings(max_examples=25, deadline=None)
@given(size=st.integers(0, 3 * BLOCK), delta=st.integers(-3, 3).filter(bool), seed=st.integers(0, 2**16))
def test_fingerprint_changes_with_the_size(size, delta, seed):
    assume(size + delta >= 0)
    data = np.random.default_rng(seed).integers(0, 256, max(size, size + delta), dtype=np.uint8).tobytes()
    with tempfile.TemporaryDirectory() as d:
        assert fingerprint(_write(d, "a", data[:size])) != fingerprint(_write(d, "b", data[: size + delta]))
        # and the scanner's size (passed in) is the one recorded
        path = _write(d, "c", data[:size])
        assert fingerprint(path, size).startswith(f"{size}:") and fingerprint(Path(path)) == fingerprint(path, size)

