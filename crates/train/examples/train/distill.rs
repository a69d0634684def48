//! `--distill`: a Chinese (and English) query tower distilled into the teacher CLIP's space,
//! then measured: text→image recall on fresh validation pictures (embedded by the teacher's
//! image tower) for the 48 colour + shape queries in Chinese through the tower, in English
//! through the tower and in English through the teacher, and the cosine between the tower's
//! embedding of held-out Chinese captions and the teacher's of their English originals.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use glimpse_encoder::bert::BertConfig;
use glimpse_encoder::checkpoint::Checkpoint;
use glimpse_encoder::{Activation, ClipConfig, Device, Preprocessor, Towers};
use glimpse_synth::{self as synth, Format};
use glimpse_train::distill::{
    save_tower, DistillReport, DistillSet, Distiller, StudentTokenizer, StudentTower, Teacher,
    TextBatch, TowerFiles,
};
use glimpse_train::TrainConfig;

use super::{embed_images, recall, Args};

/// The longest input in ids (captions have at most ~25).
const MAX_SEQ_LENGTH: usize = 64;

/// L2-normalised tower embeddings of `texts`, `[texts, dims]` flattened.
fn embed(tower: &StudentTower, tokenizer: &StudentTokenizer, texts: &[&str]) -> Result<Vec<f32>> {
    let device = Device::flex();
    let mut out = Vec::new();
    for chunk in texts.chunks(256) {
        let ids = tokenizer.encode_batch(chunk)?;
        let batch = TextBatch::new(&ids, tokenizer.pad_id(), &device)?;
        let rows: Vec<f32> = tower
            .forward(&batch)
            .into_data()
            .try_into_vec()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        for row in rows.chunks(tower.dims()) {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            out.extend(row.iter().map(|v| v / norm));
        }
    }
    Ok(out)
}

pub(crate) fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let out = args.out();
    let specs = synth::random_specs(args.train_images, args.seed);
    let captions = synth::captions_of(&specs, args.seed);
    let teacher = Teacher::load(&args.teacher)
        .with_context(|| format!("loading the teacher {}", args.teacher.display()))?;
    let tokenizer = StudentTokenizer::from_file(args.vocab.join("tokenizer.json"), MAX_SEQ_LENGTH)
        .context("run scripts/make_zh_vocab.py --out <DIR> and pass --vocab <DIR>")?;
    let set = DistillSet::build(&captions, !args.chinese_only, &teacher, &tokenizer)?;
    println!(
        "{} pairs from {} scenes ({} distinct Chinese captions), teacher targets in {:.1} s",
        set.len(),
        captions.len(),
        captions
            .iter()
            .map(|c| &c.zh)
            .collect::<std::collections::HashSet<_>>()
            .len(),
        started.elapsed().as_secs_f64()
    );

    let width = args.student_width;
    let bert = BertConfig {
        vocab_size: tokenizer.vocab_size(),
        hidden_size: width,
        num_hidden_layers: args.student_layers,
        num_attention_heads: (width / 32).max(1),
        intermediate_size: 4 * width,
        hidden_act: Activation::Gelu,
        max_position_embeddings: MAX_SEQ_LENGTH,
        type_vocab_size: 0,
        layer_norm_eps: 1e-12,
        pad_token_id: tokenizer.pad_id(),
    };
    let config = TrainConfig {
        steps: args.steps(),
        batch_size: args.batch_size,
        learning_rate: args.lr(),
        warmup_steps: args.warmup,
        weight_decay: 0.01,
        seed: args.seed,
        ..TrainConfig::default()
    };
    println!("{bert:?}\n{config:?}");
    let mut distiller = Distiller::new(
        bert.clone(),
        teacher.dims(),
        tokenizer.pad_id(),
        config,
        &Device::flex(),
    );
    let training = Instant::now();
    let mut window = Vec::new();
    distiller.train(&set, |report: &DistillReport| {
        window.push((report.loss, report.cosine));
        if report.step.is_multiple_of(args.log_every) || report.step == report.steps {
            let n = window.len() as f32;
            let loss = window.iter().map(|w| w.0).sum::<f32>() / n;
            let cos = window.iter().map(|w| w.1).sum::<f32>() / n;
            window.clear();
            println!(
                "{report}  | mean mse {loss:.6} cos {cos:.4}  | {:.0} s",
                training.elapsed().as_secs_f64()
            );
        }
    })?;
    let train_secs = training.elapsed().as_secs_f64();
    let tower = distiller.tower();
    let image_model = args
        .teacher
        .file_name()
        .map_or_else(|| "glimpse-shapes".into(), |n| n.to_string_lossy());
    let files = TowerFiles {
        tokenizer_dir: &args.vocab,
        max_seq_length: MAX_SEQ_LENGTH,
        image_model: &image_model,
    };
    save_tower(&tower, &bert, &files, &out)?;
    println!(
        "trained {} steps in {train_secs:.0} s; saved {}",
        distiller.step_count(),
        out.display()
    );
    let reference = args.data.join("zh_tower_reference.json");
    write_reference(&tower, &tokenizer, &reference)?;
    println!(
        "burn's embeddings of {} texts in {} (check: python scripts/check_zh_tower.py {} {})",
        REFERENCE_TEXTS.len(),
        reference.display(),
        out.display(),
        reference.display()
    );
    evaluate(&tower, &tokenizer, &teacher, args, &args.teacher)?;
    println!("total {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Texts whose embeddings `scripts/check_zh_tower.py` compares with sentence-transformers'.
const REFERENCE_TEXTS: &[&str] = &[
    "一个红色圆形",
    "蓝色背景上的一个红色圆形",
    "条纹背景上，左上角有一个小的橙色圆形",
    "右上角有一个很大的蓝色正方形的照片",
    "一张白色五角星的图片",
    "棋盘格上的一个绿色加号，在左下角",
    "a red circle",
    "A Big Violet Diamond in the middle",
    "purple star, top left",
    "一个紫色的星星",
    "unknown words 猫 dog",
];

/// Writes the texts, their ids and the burn forward's (unnormalised) embeddings as JSON.
fn write_reference(tower: &StudentTower, tokenizer: &StudentTokenizer, path: &Path) -> Result<()> {
    let ids = tokenizer.encode_batch(REFERENCE_TEXTS)?;
    let batch = TextBatch::new(&ids, tokenizer.pad_id(), &Device::flex())?;
    let rows: Vec<f32> = tower
        .forward(&batch)
        .into_data()
        .try_into_vec()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let embeddings: Vec<&[f32]> = rows.chunks(tower.dims()).collect();
    let json = serde_json::json!({
        "texts": REFERENCE_TEXTS,
        "ids": ids,
        "embeddings": embeddings,
    });
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    std::fs::write(path, serde_json::to_string(&json)?)?;
    Ok(())
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn evaluate(
    tower: &StudentTower,
    tokenizer: &StudentTokenizer,
    teacher: &Teacher,
    args: &Args,
    teacher_dir: &Path,
) -> Result<()> {
    // Held-out captions: the validation scenes' captions, a seed the training never used.
    let val_specs = synth::balanced_specs(args.val_images, args.seed.wrapping_add(1_000_003));
    let val_captions = synth::captions_of(&val_specs, args.seed.wrapping_add(1_000_003));
    let zh: Vec<&str> = val_captions.iter().map(|c| c.zh.as_str()).collect();
    let en: Vec<&str> = val_captions.iter().map(|c| c.en.as_str()).collect();
    let (student, target) = (embed(tower, tokenizer, &zh)?, teacher.embed(&en)?);
    let dims = teacher.dims();
    let cosines: Vec<f32> = student
        .chunks(dims)
        .zip(target.chunks(dims))
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x * y).sum())
        .collect();
    let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
    let min = cosines.iter().copied().fold(f32::INFINITY, f32::min);
    println!(
        "held-out captions: cosine(tower(zh), teacher(en)) mean {mean:.4}, min {min:.4} over {}",
        cosines.len()
    );

    // Recall on validation pictures embedded by the teacher's image tower, as `--eval-only`.
    let device = Device::flex();
    let config = ClipConfig::from_file(teacher_dir.join("config.json"))?;
    let model = Checkpoint::open_dir(teacher_dir)?.load_model(&config, Towers::Both, &device)?;
    let pre = Preprocessor::from_dir(teacher_dir)?;
    let dir = args.data.join("validation");
    let samples = synth::generate_specs(
        &dir,
        &val_specs,
        args.seed,
        synth::DEFAULT_SIZE,
        Format::Png,
    )?;
    let images = embed_images(&model, &pre, &samples, &device)?;
    let en_queries = synth::queries();
    let zh_queries = synth::queries_zh();
    let texts = |q: &[(String, synth::Colour, synth::Shape)]| -> Vec<String> {
        q.iter().map(|(t, _, _)| t.clone()).collect()
    };
    let (en_texts, zh_texts) = (texts(&en_queries), texts(&zh_queries));
    println!("Chinese queries through the tower:");
    let zh_recall = recall(
        &images,
        &samples,
        &embed(tower, tokenizer, &refs(&zh_texts))?,
        &zh_queries,
        dims,
    );
    println!("English queries through the tower:");
    let en_tower = recall(
        &images,
        &samples,
        &embed(tower, tokenizer, &refs(&en_texts))?,
        &en_queries,
        dims,
    );
    println!("English queries through the teacher:");
    let en_teacher = recall(
        &images,
        &samples,
        &teacher.embed(&refs(&en_texts))?,
        &en_queries,
        dims,
    );
    let n = en_queries.len();
    for (name, (r1, r5)) in [
        ("Chinese, tower", zh_recall),
        ("English, tower", en_tower),
        ("English, teacher", en_teacher),
    ] {
        println!(
            "{name:<17} recall@1 {r1:.3}  recall@5 {r5:.3}  ({n} queries, {} pictures)",
            samples.len()
        );
    }
    Ok(())
}
