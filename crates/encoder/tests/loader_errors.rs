//! The loader's typed errors, on small bad checkpoints built from the tiny fixture in a temp dir.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{fixtures, read_safetensors, RefTensor};
use glimpse_encoder::checkpoint::Checkpoint;
use glimpse_encoder::clip::pack::pack_checkpoint;
use glimpse_encoder::kernels::Isa;
use glimpse_encoder::{ClipConfig, ClipEncoder, Device, Error, Precision, Towers};

/// Writes a safetensors file (header JSON + data, tensors in name order).
fn write_safetensors(path: &Path, tensors: &BTreeMap<String, RefTensor>) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, t) in tensors {
        let begin = data.len();
        data.extend_from_slice(&t.bytes);
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": t.dtype, "shape": t.shape, "data_offsets": [begin, data.len()]}),
        );
    }
    let mut header = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header);
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

/// The tiny checkpoint's tensors, to be edited.
fn tiny_tensors() -> BTreeMap<String, RefTensor> {
    read_safetensors(&fixtures().join("tiny-clip/model.safetensors"))
        .into_iter()
        .collect()
}

fn config() -> ClipConfig {
    ClipConfig::from_file(fixtures().join("tiny-clip/config.json")).unwrap()
}

/// Loads `tensors` written to a temp file with the burn loader, and with the native CPU path's
/// own reader (`pack_checkpoint`, the cold-start path) for the same towers: the two must agree
/// both ways — each fails exactly when, and as, the other does.
fn load(tensors: &BTreeMap<String, RefTensor>, towers: Towers) -> glimpse_encoder::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    write_safetensors(&path, tensors);
    let checkpoint = Checkpoint::open_file(&path)?;
    let burn = checkpoint
        .load_model(&config(), towers, &Device::flex())
        .map(|_| ());
    let native = pack_checkpoint(
        &checkpoint,
        &config(),
        towers,
        Precision::F32,
        Isa::detect(),
    )
    .map(|_| ());
    assert_eq!(
        native.as_ref().map_err(|e| e.to_string()),
        burn.as_ref().map_err(|e| e.to_string()),
        "native and burn loaders disagree ({towers:?})"
    );
    burn
}

fn f32_tensor(shape: &[usize]) -> RefTensor {
    let n: usize = shape.iter().product();
    RefTensor {
        dtype: "F32".into(),
        shape: shape.to_vec(),
        bytes: vec![0; 4 * n],
    }
}

#[test]
fn the_rewritten_fixture_loads() {
    load(&tiny_tensors(), Towers::Both).unwrap();
}

#[test]
fn wrong_shape_names_the_key_and_both_shapes() {
    let mut tensors = tiny_tensors();
    let key = "text_model.encoder.layers.1.mlp.fc1.weight";
    assert_eq!(tensors[key].shape, [80, 32]);
    tensors.insert(key.into(), f32_tensor(&[80, 31]));
    let err = load(&tensors, Towers::Both).unwrap_err();
    match &err {
        Error::ShapeMismatch {
            key: k,
            expected,
            found,
        } => {
            assert_eq!(k, key);
            assert_eq!(expected, &[80, 32]);
            assert_eq!(found, &[80, 31]);
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(key) && message.contains("[80, 31]") && message.contains("[80, 32]"));
    // The vision tower alone does not read text tensors, so the bad one does not matter.
    load(&tensors, Towers::VisionOnly).unwrap();
}

#[test]
fn missing_key_is_named() {
    let mut tensors = tiny_tensors();
    tensors.remove("vision_model.post_layernorm.bias");
    let err = load(&tensors, Towers::Both).unwrap_err();
    assert!(
        matches!(&err, Error::MissingWeight { key, expected }
            if key == "vision_model.post_layernorm.bias" && expected == &[48]),
        "{err:?}"
    );
    assert!(err.to_string().contains("vision_model.post_layernorm.bias"));
    load(&tensors, Towers::TextOnly).unwrap();
}

#[test]
fn unexpected_key_is_named() {
    let mut tensors = tiny_tensors();
    tensors.insert(
        "text_model.encoder.layers.2.mlp.fc1.weight".into(),
        f32_tensor(&[80, 32]),
    );
    let err = load(&tensors, Towers::Both).unwrap_err();
    assert!(
        matches!(&err, Error::UnexpectedWeight { key, shape }
            if key == "text_model.encoder.layers.2.mlp.fc1.weight" && shape == &[80, 32]),
        "{err:?}"
    );
    // A key outside both towers is unexpected whatever is loaded.
    let mut tensors = tiny_tensors();
    tensors.insert("head.weight".into(), f32_tensor(&[2]));
    assert!(matches!(
        load(&tensors, Towers::TextOnly),
        Err(Error::UnexpectedWeight { key, .. }) if key == "head.weight"
    ));
    // The position_ids buffers of older checkpoints are accepted.
    let mut tensors = tiny_tensors();
    tensors.insert(
        "text_model.embeddings.position_ids".into(),
        RefTensor {
            dtype: "I64".into(),
            shape: vec![1, 77],
            bytes: (0..77i64).flat_map(|i| i.to_le_bytes()).collect(),
        },
    );
    load(&tensors, Towers::Both).unwrap();
}

#[test]
fn one_tower_checkpoints_load_that_tower() {
    // A text-only file (every vision tensor dropped) serves a text-only model.
    let text: BTreeMap<_, _> = tiny_tensors()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("vision_model.") && !k.starts_with("visual_projection."))
        .collect();
    load(&text, Towers::TextOnly).unwrap();
    assert!(matches!(
        load(&text, Towers::Both),
        Err(Error::MissingWeight { .. })
    ));
}

#[test]
fn half_precision_weights_are_widened() {
    let mut tensors = tiny_tensors();
    for t in tensors.values_mut() {
        if t.dtype == "F32" {
            t.bytes = t
                .bytes
                .chunks_exact(4)
                .flat_map(|b| {
                    let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    burn::tensor::bf16::from_f32(x).to_bits().to_le_bytes()
                })
                .collect();
            t.dtype = "BF16".into();
        }
    }
    load(&tensors, Towers::Both).unwrap();
    let mut tensors = tiny_tensors();
    tensors.get_mut("logit_scale").unwrap().dtype = "I32".into();
    assert!(matches!(
        load(&tensors, Towers::Both),
        Err(Error::UnsupportedDType { key, dtype }) if key == "logit_scale" && dtype == "I32"
    ));
}

#[test]
fn malformed_files_are_checkpoint_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, b"abc").unwrap();
    assert!(matches!(
        Checkpoint::open_file(&path),
        Err(Error::Checkpoint { .. })
    ));
    std::fs::write(&path, [255u8, 255, 255, 255, 0, 0, 0, 0, b'{', b'}']).unwrap();
    assert!(matches!(
        Checkpoint::open_file(&path),
        Err(Error::Checkpoint { .. })
    ));
    // An entry whose byte range lies outside the data.
    let mut header = br#"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#.to_vec();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.append(&mut header);
    bytes.extend([0u8; 8]);
    std::fs::write(&path, bytes).unwrap();
    let err = Checkpoint::open_file(&path).unwrap_err();
    assert!(
        matches!(&err, Error::Checkpoint { message, .. } if message.contains("`x`")),
        "{err:?}"
    );
    // A directory without weights.
    assert!(matches!(
        ClipEncoder::load(dir.path().join("nothing"), &Device::flex(), Towers::Both),
        Err(Error::Io { .. })
    ));
}
