//! Hybrid search: folder names and metadata keywords fused with CLIP, the CLIP order kept
//! exactly when hybrid is off or no word matches, and keywords that survive a kill.

use super::common::*;
use glimpse::{IndexOptions, Library, SearchOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The CLIP-only order of the whole library for `query`, by exact cosine (ties by id).
fn clip_order(lib: &Library, query: &str) -> Vec<u64> {
    let q = lib.embed_text(query).unwrap();
    let mut scored: Vec<(f32, u64)> = lib
        .photos()
        .into_iter()
        .map(|(id, _)| {
            let e = lib.embedding(id).unwrap().unwrap();
            (e.iter().zip(&q).map(|(a, b)| a * b).sum(), id)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, id)| id).collect()
}

fn ids(hits: &[glimpse::Hit]) -> Vec<u64> {
    hits.iter().map(|h| h.id).collect()
}

/// 4 photos in `Germany 2019/`, 12 elsewhere.
fn germany_folder(root: &Path) -> Vec<PathBuf> {
    let mut germany = Vec::new();
    for i in 0..16u32 {
        let path = if i % 4 == 1 {
            root.join(format!("Trips/Germany 2019/IMG_{i:04}.jpg"))
        } else {
            root.join(format!("Trips/Other/IMG_{i:04}.jpg"))
        };
        write_photo(&path, i, 96 + i, 80);
        if i % 4 == 1 {
            germany.push(path);
        }
    }
    germany
}

#[test]
fn a_folder_name_lifts_its_photos_and_hybrid_off_is_clip_order() {
    let photos = tempfile::tempdir().unwrap();
    let root = photos.path().canonicalize().unwrap();
    let germany = germany_folder(&root);
    let lib_dir = tempfile::tempdir().unwrap();
    let lib = open(lib_dir.path());
    index(&lib, &root);
    let n = lib.len();
    let clip = clip_order(&lib, "germany");
    let is_germany = |id: &u64| germany.contains(&lib.path(*id).unwrap());
    // CLIP alone misses them: its top 4 are not the Germany photos.
    assert!(
        !clip[..4].iter().all(is_germany),
        "precondition: CLIP alone already ranks the Germany photos first"
    );
    let off = lib
        .search_text_with("germany", n, &SearchOptions::default().hybrid(false))
        .unwrap();
    assert_eq!(ids(&off), clip, "hybrid off is exactly the CLIP order");
    assert!(off.iter().all(|h| h.matched.is_empty()));

    let on = lib
        .search_text_with("germany", n, &SearchOptions::default())
        .unwrap();
    assert!(on[..4].iter().all(|h| is_germany(&h.id)), "{on:?}");
    assert!(on[..4].iter().all(|h| h.matched == ["germany"]), "{on:?}");
    // The Germany photos in CLIP order, then the rest in CLIP order; scores stay cosines.
    let (g, rest): (Vec<u64>, Vec<u64>) = clip.iter().partition(|id| is_germany(id));
    assert_eq!(ids(&on), [g, rest].concat());
    for h in &on {
        let off_hit = off.iter().find(|o| o.id == h.id).unwrap();
        assert!((h.score - off_hit.score).abs() < 1e-6);
    }
    // A descriptive query that names no folder or keyword ranks exactly as CLIP.
    let q = "a small blue rectangle";
    assert_eq!(
        ids(&lib
            .search_text_with(q, n, &SearchOptions::default())
            .unwrap()),
        clip_order(&lib, q)
    );
    // Filters apply to keyword matches too.
    let other = SearchOptions::default().folder(root.join("Trips/Other"));
    let hits = lib.search_text_with("germany", n, &other).unwrap();
    assert!(hits.iter().all(|h| !is_germany(&h.id)) && hits.len() == 12);
    // Capture-month words need EXIF dates (none here); the year in the folder name is a word.
    let hits = lib
        .search_text_with("2019", 4, &SearchOptions::default())
        .unwrap();
    assert!(hits.iter().all(|h| is_germany(&h.id)), "{hits:?}");
}

#[test]
fn metadata_keywords_are_searchable() {
    let photos = tempfile::tempdir().unwrap();
    let root = photos.path().canonicalize().unwrap();
    for i in 0..10u32 {
        let tags: &[&str] = if i == 3 {
            &["Oma", "Geburtstag"]
        } else {
            &["Haus"]
        };
        write_tagged(&root.join(format!("p{i}.jpg")), i, tags);
    }
    let lib_dir = tempfile::tempdir().unwrap();
    let lib = open(lib_dir.path());
    index(&lib, &root);
    let hits = lib.search_text("oma", 3).unwrap();
    assert_eq!(hits[0].path, root.join("p3.jpg"), "{hits:?}");
    assert_eq!(hits[0].matched, ["oma"]);
    let id = hits[0].id;
    assert!(
        lib.keywords(id).contains(&"geburtstag".to_string()),
        "{:?}",
        lib.keywords(id)
    );
    // Reopened: the words come back from the store.
    drop(lib);
    let lib = open(lib_dir.path());
    assert_eq!(lib.search_text("Oma", 1).unwrap()[0].id, id);
}

/// The keyword of photo `p{i}` is `TAGS[i % 3]`.
const TAGS: [&str; 3] = ["Alpha", "Bravo", "Charlie"];

const CHILD_LIB: &str = "GLIMPSE_HYBRID_CRASH_LIB";
const CHILD_PHOTOS: &str = "GLIMPSE_HYBRID_CRASH_PHOTOS";

#[test]
#[ignore = "the child process of keywords_survive_kills (run by it with --ignored)"]
fn hybrid_crash_child() {
    let (Ok(lib), Ok(photos)) = (std::env::var(CHILD_LIB), std::env::var(CHILD_PHOTOS)) else {
        panic!("hybrid_crash_child runs only as keywords_survive_kills's child");
    };
    let lib = open(Path::new(&lib));
    let progress: glimpse::ProgressFn = std::sync::Arc::new(|p: &glimpse::Progress| {
        use std::io::Write;
        let mut out = std::io::stdout();
        writeln!(out, "\nPROGRESS {}", p.encoded).unwrap();
        out.flush().unwrap();
    });
    let opts = IndexOptions::default().batch_size(1).progress(progress);
    lib.index_folder(&photos, &opts).unwrap();
}

/// Every photo the library holds has the keywords of its file: a kill between a record and
/// its words cannot happen (one batch).
fn check_keywords(lib: &Library, root: &Path) {
    for (id, path) in lib.photos() {
        let i: u32 = path.file_stem().unwrap().to_string_lossy()[1..]
            .parse()
            .unwrap();
        let word = TAGS[i as usize % 3].to_lowercase();
        assert!(
            lib.keywords(id).contains(&word),
            "{} lost its keyword {word}: {:?}",
            path.strip_prefix(root).unwrap().display(),
            lib.keywords(id)
        );
    }
}

#[test]
fn keywords_survive_kills() {
    let photos = tempfile::tempdir().unwrap();
    let root = photos.path().canonicalize().unwrap();
    for i in 0..24u32 {
        write_tagged(&root.join(format!("p{i}.jpg")), i, &[TAGS[i as usize % 3]]);
    }
    let lib_dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut kills = 0;
    for round in 0..4 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "library::hybrid::hybrid_crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_LIB, lib_dir.path())
            .env(CHILD_PHOTOS, &root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let mut batches = 0;
        while batches < 2 + round {
            match lines.next() {
                Some(l) if l.starts_with("PROGRESS") => batches += 1,
                Some(_) => {}
                None => break,
            }
        }
        std::thread::sleep(Duration::from_millis(3 * round as u64));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        let lib = open(lib_dir.path());
        check_keywords(&lib, &root);
        println!("after kill {kills}: {} photos, keywords intact", lib.len());
    }
    assert!(kills >= 1, "no kill happened");
    let lib = open(lib_dir.path());
    index(&lib, &root);
    assert_eq!(lib.len(), 24);
    check_keywords(&lib, &root);
    let hits = lib.search_text("bravo", 8).unwrap();
    assert!(hits.iter().all(|h| h.matched == ["bravo"]), "{hits:?}");
}

/// The labelled set the fusion was chosen on: 96 synthetic pictures (two per colour × shape) in
/// four trip folders, with the demo model (which knows shapes and colours, not places).
/// Queries: the four folder names (relevant: that folder's pictures), the 48 colour + shape
/// queries (relevant: that colour and shape, anywhere), and each of those "in germany" where
/// the Germany folder has one (relevant: those). Mean reciprocal rank of the first relevant
/// hit in the top 10, for CLIP alone, reciprocal-rank fusion and weighted sums.
#[test]
fn fusion_measured_on_a_labelled_set() {
    use glimpse::Hybrid;
    use glimpse_synth as synth;
    use std::collections::HashMap;
    let photos = tempfile::tempdir().unwrap();
    let root = photos.path().canonicalize().unwrap();
    let folders = ["Germany 2019", "Italy 2020", "Beach", "Oma Geburtstag"];
    let specs = synth::balanced_specs(2 * synth::queries().len(), 0x0F05_E000);
    let mut truth: HashMap<PathBuf, (usize, synth::Colour, synth::Shape)> = HashMap::new();
    for (f, folder) in folders.iter().enumerate() {
        let mine: Vec<synth::Spec> = specs.iter().copied().skip(f).step_by(4).collect();
        let dir = root.join(folder);
        for s in
            synth::generate_specs(&dir, &mine, 7, synth::DEFAULT_SIZE, synth::Format::Png).unwrap()
        {
            truth.insert(
                s.path.canonicalize().unwrap(),
                (f, s.spec.colour, s.spec.shape),
            );
        }
    }
    let lib_dir = tempfile::tempdir().unwrap();
    let lib = Library::builder()
        .model(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/glimpse-shapes"))
        .open(lib_dir.path())
        .unwrap();
    index(&lib, &root);
    type Relevant = Box<dyn Fn(&(usize, synth::Colour, synth::Shape)) -> bool>;
    let mut queries: Vec<(&str, String, Relevant)> = Vec::new();
    for (f, word) in ["germany", "italy", "beach", "oma"].iter().enumerate() {
        queries.push(("folder", word.to_string(), Box::new(move |t| t.0 == f)));
    }
    for (q, colour, shape) in synth::queries() {
        queries.push((
            "description",
            q.clone(),
            Box::new(move |t| (t.1, t.2) == (colour, shape)),
        ));
        if truth.values().any(|t| *t == (0, colour, shape)) {
            queries.push((
                "description + folder",
                format!("{q} in germany"),
                Box::new(move |t| *t == (0, colour, shape)),
            ));
        }
    }
    let modes = [
        ("CLIP alone", Hybrid::Off),
        ("RRF (k = 60)", Hybrid::On),
        ("weighted 0.05", Hybrid::Weighted(0.05)),
        ("weighted 0.2", Hybrid::Weighted(0.2)),
        ("weighted 1.0", Hybrid::Weighted(1.0)),
    ];
    let kinds = ["folder", "description", "description + folder"];
    let mut mrr: HashMap<(&str, &str), f64> = HashMap::new();
    for (mode, hybrid) in modes {
        let mut opts = SearchOptions::default();
        opts.hybrid = hybrid;
        for kind in kinds {
            let mine: Vec<_> = queries.iter().filter(|q| q.0 == kind).collect();
            let mut sum = 0.0;
            for (_, q, relevant) in &mine {
                let hits = lib.search_text_with(q, 10, &opts).unwrap();
                if let Some(r) = hits.iter().position(|h| relevant(&truth[&h.path])) {
                    sum += 1.0 / (r + 1) as f64;
                }
            }
            mrr.insert((mode, kind), sum / mine.len() as f64);
        }
    }
    println!("MRR@10      | folder | description | description + folder");
    for (mode, _) in modes {
        println!(
            "{mode:<13} | {:.3}  | {:.3}       | {:.3}",
            mrr[&(mode, kinds[0])],
            mrr[&(mode, kinds[1])],
            mrr[&(mode, kinds[2])]
        );
    }
    let (clip, rrf) = ("CLIP alone", "RRF (k = 60)");
    // Folder words find their folders; descriptions rank exactly as CLIP; both together beat
    // either alone.
    assert!(mrr[&(rrf, "folder")] > 0.99, "{mrr:?}");
    assert_eq!(mrr[&(rrf, "description")], mrr[&(clip, "description")]);
    assert!(mrr[&(rrf, "description + folder")] > mrr[&(clip, "description + folder")]);
}

#[test]
fn has_keyword_filters_inside_the_search() {
    let photos = tempfile::tempdir().unwrap();
    let root = photos.path().canonicalize().unwrap();
    for i in 0..8u32 {
        let tags: &[&str] = if i % 4 == 0 { &["Oma"] } else { &["Haus"] };
        write_tagged(&root.join(format!("p{i}.jpg")), i, tags);
    }
    let lib_dir = tempfile::tempdir().unwrap();
    let lib = open(lib_dir.path());
    index(&lib, &root);
    let opts = SearchOptions::default().keyword("OMA").hybrid(false);
    let hits = lib.search_text_with("a red square", 8, &opts).unwrap();
    let mut names: Vec<_> = hits.iter().map(|h| h.path.clone()).collect();
    names.sort();
    assert_eq!(names, [root.join("p0.jpg"), root.join("p4.jpg")]);
    let none = SearchOptions::default().keyword("opa");
    assert!(lib
        .search_text_with("a red square", 8, &none)
        .unwrap()
        .is_empty());
}
