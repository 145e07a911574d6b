"""Where model packs come from besides a local pack: the Hugging Face Hub, a pack URL, and
layouts other tools use (Immich's CLIP repositories), turned into a pack folder ready for
:func:`desktop_app.model_store.install`.

- :mod:`.hub` fetches files of ``hf:ORG/REPO[@REVISION]`` through ``huggingface_hub`` and checks them;
- :mod:`.detect` tells the layouts apart and prepares a pack folder from any of them;
- :mod:`.immich` and :mod:`.rclip` convert those tools' layouts; :mod:`.onnx_graph` reads and
  adjusts ONNX files without the ``onnx`` package; :mod:`.web` fetches a pack published as a zip
  or a folder URL.

Nothing here imports torch: a plain install pulls and uses every model these sources serve.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import PackError, PixfindError, one_line
from ..pack import PackManifest, write_manifest


def write_converted(out: Path, manifest: PackManifest) -> PackManifest:
    """Write the pack.json of a converted model (the sha256 of its files); one line on failure."""
    try:
        write_manifest(out, manifest)
    except PackError:
        raise
    except (OSError, ValueError) as e:
        raise PixfindError(f"{out}: cannot write the pack ({one_line(e)})") from None
    return manifest
