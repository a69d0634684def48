//! BERT-family encoder parity with Hugging Face `transformers`: the tiny random `BertModel`
//! and `DistilBertModel` made by `scripts/make_chinese_clip_fixtures.py`
//! (`fixtures/chinese_clip/tiny-{bert,distilbert}`), their `last_hidden_state` for a
//! right-padded batch with an attention mask (and token types for BERT), on the burn (flex)
//! modules and the native kernels.

mod common;

use common::{cosine, fixtures, read_safetensors};
use glimpse_encoder::bert::{pack, BertConfig, BertFlavor};
use glimpse_encoder::checkpoint::Checkpoint;
use glimpse_encoder::kernels::Isa;
use glimpse_encoder::{Device, Precision};

struct Case {
    name: &'static str,
    flavor: BertFlavor,
}

const CASES: [Case; 2] = [
    Case {
        name: "tiny-bert",
        flavor: BertFlavor::Bert,
    },
    Case {
        name: "tiny-distilbert",
        flavor: BertFlavor::DistilBert,
    },
];

fn rows(json: &serde_json::Value, key: &str) -> Vec<Vec<u32>> {
    json[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

struct Reference {
    ids: Vec<Vec<u32>>,
    types: Vec<Vec<u32>>,
    tensors: std::collections::HashMap<String, common::RefTensor>,
}

fn reference() -> Reference {
    let dir = fixtures().join("chinese_clip");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference-bert.json")).unwrap())
            .unwrap();
    Reference {
        ids: rows(&json, "ids"),
        types: rows(&json, "token_type_ids"),
        tensors: read_safetensors(&dir.join("reference-bert.safetensors")),
    }
}

fn config(case: &Case) -> BertConfig {
    let path = fixtures()
        .join("chinese_clip")
        .join(case.name)
        .join("config.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    BertConfig::from_value(&json, case.flavor).unwrap()
}

/// The worst cosine and largest absolute difference over every real (unpadded) position.
fn compare(
    name: &str,
    engine: &str,
    ids: &[Vec<u32>],
    got: impl Fn(usize, usize) -> Vec<f32>,
    want: &[f32],
    seq: usize,
    width: usize,
) -> (f64, f32) {
    let (mut worst, mut max_abs) = (1.0f64, 0.0f32);
    for (b, row) in ids.iter().enumerate() {
        for i in 0..row.len() {
            let start = (b * seq + i) * width;
            let w = &want[start..start + width];
            let g = got(b, i);
            worst = worst.min(cosine(&g, w));
            for (x, y) in g.iter().zip(w) {
                max_abs = max_abs.max((x - y).abs());
            }
        }
    }
    println!(
        "{name} on {engine}: 1 - cos <= {:.1e}, max |diff| {max_abs:.1e}",
        1.0 - worst
    );
    (worst, max_abs)
}

#[test]
fn last_hidden_states_match_transformers_on_burn() {
    let r = reference();
    for case in &CASES {
        let config = config(case);
        let dir = fixtures().join("chinese_clip").join(case.name);
        let checkpoint = Checkpoint::open_dir(&dir).unwrap();
        let model = checkpoint
            .load_bert(&config, case.flavor, "", &Device::flex())
            .unwrap();
        let want = r.tensors[&format!("{}.last_hidden_state", case.name)].f32();
        let seq = r.ids.iter().map(Vec::len).max().unwrap();
        let types = (case.flavor == BertFlavor::Bert).then_some(r.types.as_slice());
        let hidden = model.forward_ids(&r.ids, types, 0).unwrap();
        assert_eq!(hidden.dims(), [r.ids.len(), seq, config.hidden_size]);
        let values = hidden.into_data().try_to_vec::<f32>().unwrap();
        let d = config.hidden_size;
        let (worst, max_abs) = compare(
            case.name,
            "burn (flex)",
            &r.ids,
            |b, i| values[(b * seq + i) * d..(b * seq + i + 1) * d].to_vec(),
            &want,
            seq,
            d,
        );
        assert!(worst >= 0.99999 && max_abs < 1e-3, "{}", case.name);
    }
}

#[test]
fn last_hidden_states_match_transformers_on_native_kernels() {
    let r = reference();
    for case in &CASES {
        let config = config(case);
        let dir = fixtures().join("chinese_clip").join(case.name);
        let checkpoint = Checkpoint::open_dir(&dir).unwrap();
        let native = pack::pack_checkpoint(
            &checkpoint,
            &config,
            case.flavor,
            "",
            Precision::F32,
            Isa::detect(),
        )
        .unwrap();
        let want = r.tensors[&format!("{}.last_hidden_state", case.name)].f32();
        let seq = r.ids.iter().map(Vec::len).max().unwrap();
        let types = (case.flavor == BertFlavor::Bert).then_some(r.types.as_slice());
        let states = native.forward(&r.ids, types).unwrap();
        assert_eq!((states.seq, states.width), (seq, config.hidden_size));
        let (worst, max_abs) = compare(
            case.name,
            &format!("native ({:?})", Isa::detect()),
            &r.ids,
            |b, i| states.row(b, i).to_vec(),
            &want,
            seq,
            config.hidden_size,
        );
        assert!(worst >= 0.99999 && max_abs < 1e-3, "{}", case.name);
        // Each sequence alone equals its row in the padded batch: padding is masked.
        for (b, row) in r.ids.iter().enumerate() {
            let alone = native
                .forward(std::slice::from_ref(row), types.map(|t| &t[b..b + 1]))
                .unwrap();
            for i in 0..row.len() {
                let c = cosine(alone.row(0, i), states.row(b, i));
                assert!(c > 0.999999, "{} item {b} position {i}: {c}", case.name);
            }
        }
        // Mean pooling over real positions (sentence-transformers) and [CLS].
        let mean = states.mean();
        let d = config.hidden_size;
        let last = r.ids.len() - 1;
        let expected: Vec<f32> = (0..d)
            .map(|j| {
                (0..r.ids[last].len())
                    .map(|i| states.row(last, i)[j])
                    .sum::<f32>()
                    / r.ids[last].len() as f32
            })
            .collect();
        assert!(cosine(&mean[last * d..], &expected) > 0.999999);
        assert_eq!(&states.first()[..d], states.row(0, 0));
    }
}

#[test]
fn token_types_change_bert_and_are_checked() {
    let r = reference();
    let case = &CASES[0];
    let config = config(case);
    let dir = fixtures().join("chinese_clip").join(case.name);
    let checkpoint = Checkpoint::open_dir(&dir).unwrap();
    let native = pack::pack_checkpoint(
        &checkpoint,
        &config,
        case.flavor,
        "",
        Precision::F32,
        Isa::detect(),
    )
    .unwrap();
    let with = native.forward(&r.ids[..1], Some(&r.types[..1])).unwrap();
    let without = native.forward(&r.ids[..1], None).unwrap();
    let c = cosine(with.row(0, 4), without.row(0, 4));
    assert!(c < 0.999, "token type 1 must move the state: {c}");
    assert!(native
        .forward(&r.ids[..1], Some(&[vec![0, 0, 0, 0, 2]]))
        .is_err());
    assert!(native.forward(&[vec![0u32; 41]], None).is_err());
    assert!(native.forward(&[vec![600u32]], None).is_err());
    // The wrong layout is refused by the key map, naming a key.
    let err = pack::pack_checkpoint(
        &checkpoint,
        &config,
        BertFlavor::DistilBert,
        "",
        Precision::F32,
        Isa::detect(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("transformer.layer.0"), "{err}");
}

#[test]
fn state_dict_round_trips_to_the_checkpoint_and_the_native_kernels() {
    use glimpse_encoder::bert::{state_dict, BertKeys};
    let r = reference();
    for case in &CASES {
        let config = config(case);
        let dir = fixtures().join("chinese_clip").join(case.name);
        let checkpoint = Checkpoint::open_dir(&dir).unwrap();
        let model = checkpoint
            .load_bert(&config, case.flavor, "", &Device::flex())
            .unwrap();
        let keys = BertKeys::new(&config, case.flavor, "");
        let state = state_dict(&model, &keys).unwrap();
        assert_eq!(state.len(), keys.specs().len());
        for spec in keys.specs() {
            let (shape, values) = &state[&spec.key];
            assert_eq!(shape, &spec.shape, "{}", spec.key);
            assert!(
                values == &checkpoint.read_f32(&spec.key, &spec.shape).unwrap(),
                "{}",
                spec.key
            );
        }
        let native = pack::pack_bert(&state, &keys, Precision::F32, Isa::detect()).unwrap();
        let types = (case.flavor == BertFlavor::Bert).then_some(r.types.as_slice());
        let states = native.forward(&r.ids, types).unwrap();
        let want = r.tensors[&format!("{}.last_hidden_state", case.name)].f32();
        let (worst, _) = compare(
            case.name,
            "native from a state dict",
            &r.ids,
            |b, i| states.row(b, i).to_vec(),
            &want,
            states.seq,
            states.width,
        );
        assert!(worst >= 0.99999);
    }
}
