"""pack.json format 3: the text tower's own precision (an int8 text tower beside an fp32 image
tower); packs without one are still written as format 2, which older pixfind releases read."""

from __future__ import annotations

import json

import pytest

from desktop_app.errors import PackError
from desktop_app.pack import FORMAT_VERSION, ImageSettings, PackManifest, TextSettings, read_manifest
from tests.unit.test_pack_format2 import manifest_dict


def built_manifest(text_precision: str | None) -> PackManifest:
    """A manifest as a writer builds one: no format version given."""
    return PackManifest(
        name="m",
        embedding_dim=8,
        precision="fp32",
        image=ImageSettings(size=(32, 32)),
        text=TextSettings(context_length=77, precision=text_precision),
        files=manifest_dict()["files"],
    )


def test_a_text_precision_of_its_own_is_written_as_format_3_and_read_back():
    assert FORMAT_VERSION == 3
    manifest = built_manifest("int8")
    written = json.loads(manifest.to_json())
    assert written["format_version"] == 3 and written["precision"] == "fp32" and written["text"]["precision"] == "int8"
    read = PackManifest.from_dict(written)
    assert read == manifest
    assert (read.precision, read.text_precision, read.precision_label) == ("fp32", "int8", "fp32 (text int8)")


def test_a_pack_without_a_text_precision_is_still_written_as_format_2():
    manifest = built_manifest(None)
    written = json.loads(manifest.to_json())
    assert written["format_version"] == 2 and "precision" not in written["text"]
    assert (manifest.text_precision, manifest.precision_label) == ("fp32", "fp32")


def test_format_3_without_a_text_precision_means_the_packs():
    manifest = PackManifest.from_dict(manifest_dict(version=3))
    assert manifest.format_version == 3 and manifest.text_precision == "fp32"
    assert "precision" not in json.loads(manifest.to_json())["text"]


@pytest.mark.parametrize("version", [1, 2])
def test_older_formats_cannot_carry_a_text_precision(tmp_path, version):
    (tmp_path / "pack.json").write_text(json.dumps(manifest_dict(version=version, precision="int8")))
    with pytest.raises(PackError) as info:
        read_manifest(tmp_path)
    message = str(info.value)
    assert message.startswith(str(tmp_path / "pack.json") + ": ")
    assert "text has unknown field 'precision' (it needs pack format 3)" in message and "\n" not in message


@pytest.mark.parametrize("value, shown", [("int4", "'int4'"), ("INT8", "'INT8'"), (8, "8"), (["int8"], "list"), ("", "''")])
def test_an_unknown_text_precision_is_refused_in_one_line(value, shown):
    with pytest.raises(PackError) as info:
        PackManifest.from_dict(manifest_dict(version=3, precision=value))
    assert f"text precision {shown} is not null or one of fp32, fp16, int8" in str(info.value)
    assert "\n" not in str(info.value)


def test_validate_refuses_a_text_precision_set_on_a_format_2_manifest_in_code():
    manifest = built_manifest(None)
    manifest.text.precision = "int8"  # after the format was chosen: the writer must say format 3
    with pytest.raises(PackError, match="text has unknown field 'precision' \\(it needs pack format 3\\)"):
        manifest.validate()
