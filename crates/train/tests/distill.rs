//! Distillation: a few steps lower the error, and a saved tower loads back through the
//! encoder's sentence-transformers loader (`glimpse_encoder::sentence::QueryTower`, both
//! engines) with the embeddings the student computed.

use std::path::Path;

use glimpse_encoder::bert::BertConfig;
use glimpse_encoder::sentence::QueryTower;
use glimpse_encoder::{Activation, Device, Engine, LoadOptions};
use glimpse_train::distill::{
    save_tower, DistillSet, Distiller, StudentTokenizer, Teacher, TextBatch, TowerFiles,
};
use glimpse_train::TrainConfig;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn distil_save_and_load_back() {
    let teacher = Teacher::load(root().join("models/glimpse-shapes")).unwrap();
    let vocab = root().join("models/glimpse-shapes-zh");
    let tokenizer = StudentTokenizer::from_file(vocab.join("tokenizer.json"), 32).unwrap();
    let captions = glimpse_synth::captions_of(&glimpse_synth::random_specs(64, 3), 3);
    let set = DistillSet::build(&captions, true, &teacher, &tokenizer).unwrap();
    assert_eq!(set.len(), 128);
    // Chinese and English captions of one scene share the teacher's target.
    assert_eq!(set.target(0), set.target(1));
    assert!(
        set.texts[0].contains('个') || set.texts[0].contains('色'),
        "{}",
        set.texts[0]
    );

    let bert = BertConfig {
        vocab_size: tokenizer.vocab_size(),
        hidden_size: 32,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        intermediate_size: 64,
        hidden_act: Activation::Gelu,
        max_position_embeddings: 32,
        type_vocab_size: 0,
        layer_norm_eps: 1e-12,
        pad_token_id: tokenizer.pad_id(),
    };
    let config = TrainConfig {
        steps: 40,
        batch_size: 32,
        learning_rate: 3e-3,
        warmup_steps: 5,
        seed: 1,
        ..TrainConfig::default()
    };
    let mut distiller = Distiller::new(
        bert.clone(),
        teacher.dims(),
        tokenizer.pad_id(),
        config,
        &Device::flex(),
    );
    let mut losses = Vec::new();
    distiller
        .train(&set, |r| losses.push((r.loss, r.cosine)))
        .unwrap();
    let first = losses[..5].iter().map(|l| l.0).sum::<f32>() / 5.0;
    let last = losses[35..].iter().map(|l| l.0).sum::<f32>() / 5.0;
    println!(
        "mse {first:.5} -> {last:.5}, cosine {:.3} -> {:.3}",
        losses[0].1, losses[39].1
    );
    assert!(last < 0.5 * first, "mse {first} -> {last}");

    // Save, then load with the encoder's loader: the same (normalised) embeddings.
    let dir = tempfile::tempdir().unwrap();
    let files = TowerFiles {
        tokenizer_dir: &vocab,
        max_seq_length: 32,
        image_model: "glimpse-shapes",
    };
    let tower = distiller.tower();
    save_tower(&tower, &bert, &files, dir.path()).unwrap();
    let texts = [
        "一个红色圆形",
        "条纹背景上，左上角有一个小的橙色圆形",
        "a blue star",
    ];
    let ids = tokenizer.encode_batch(&texts).unwrap();
    let batch = TextBatch::new(&ids, tokenizer.pad_id(), &Device::flex()).unwrap();
    let ours: Vec<f32> = tower.forward(&batch).into_data().try_into_vec().unwrap();
    for engine in [Engine::Burn, Engine::Native] {
        let options = LoadOptions::default().engine(engine);
        let loaded = QueryTower::load(dir.path(), &Device::flex(), &options).unwrap();
        assert_eq!(loaded.dims(), teacher.dims());
        let theirs = loaded.embed_texts(&texts).unwrap();
        for (row, (a, b)) in ours.chunks(teacher.dims()).zip(&theirs).enumerate() {
            let norm = a.iter().map(|v| v * v).sum::<f32>().sqrt();
            let cos: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / norm;
            assert!(cos > 0.99999, "{engine:?}, text {row}: cosine {cos}");
        }
    }
}
