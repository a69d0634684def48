//! Crash safety: a child process commits batches in a loop and is SIGKILLed at random moments.
//! After each kill the store must reopen, pass its integrity check, and hold every batch the
//! child reported as committed (plus, possibly, the one batch in flight — all of it or none).
//!
//! Seed: `GLIMPSE_CRASH_SEED=<u64>` reproduces a run; the seed is printed either way.

mod common;

use common::{model, record, DIMS};
use glimpse_store::Store;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD_DIR: &str = "GLIMPSE_STORE_CRASH_CHILD_DIR";
const CHILD_SEED: &str = "GLIMPSE_STORE_CRASH_CHILD_SEED";
const KILLS: usize = 12;

/// One operation of a batch, as the child reports it on stdout.
#[derive(Debug, Clone)]
enum Op {
    Insert(u64, PathBuf),
    Rename(u64, PathBuf),
    Remove(u64),
}

fn format_ops(ops: &[Op]) -> String {
    let parts: Vec<String> = ops
        .iter()
        .map(|op| match op {
            Op::Insert(id, p) => format!("I {id} {}", p.display()),
            Op::Rename(id, p) => format!("R {id} {}", p.display()),
            Op::Remove(id) => format!("D {id}"),
        })
        .collect();
    parts.join(";")
}

fn parse_ops(line: &str) -> Vec<Op> {
    line.split(';')
        .map(|part| {
            let mut it = part.splitn(3, ' ');
            let (kind, id) = (it.next().unwrap(), it.next().unwrap().parse().unwrap());
            match kind {
                "I" => Op::Insert(id, PathBuf::from(it.next().unwrap())),
                "R" => Op::Rename(id, PathBuf::from(it.next().unwrap())),
                "D" => Op::Remove(id),
                other => panic!("unknown op {other}"),
            }
        })
        .collect()
}

fn apply(state: &mut BTreeMap<u64, PathBuf>, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Insert(id, p) | Op::Rename(id, p) => {
                state.insert(*id, p.clone());
            }
            Op::Remove(id) => {
                state.remove(id);
            }
        }
    }
}

/// The embedding the child writes for image `id`, so the parent can check values too.
fn embedding_for(id: u64) -> Vec<f32> {
    (0..DIMS).map(|i| id as f32 + i as f32 / 8.0).collect()
}

/// The child process of the kill test (the parent sets [`CHILD_DIR`]). Ignored in a normal run
/// (it is not a test on its own); the parent runs it with `--ignored`.
#[test]
#[ignore = "the child process of the kill test (run by it with --ignored)"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        panic!("crash_child runs only as the kill test's child ({CHILD_DIR})");
    };
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let store = Store::open(&dir).unwrap();
    store.set_model(&model()).unwrap();
    let mut live: Vec<u64> = store.images().map(|r| r.unwrap().0).collect();
    let mut stdout = std::io::stdout();
    for n in 0u64.. {
        let mut batch = store.batch();
        let mut ops = Vec::new();
        for k in 0..rng.gen_range(1..=4) {
            let choice = rng.gen_range(0..10);
            if live.is_empty() || choice < 6 {
                let path = PathBuf::from(format!("/s{seed}/{n}-{k}.png"));
                let id = batch
                    .insert(&record(&path, (n % 251) as u8), &[1.0; DIMS])
                    .unwrap();
                // Rewrite with the id-derived embedding (exercises set_embedding in a batch).
                batch.set_embedding(id, &embedding_for(id)).unwrap();
                live.push(id);
                ops.push(Op::Insert(id, path));
            } else if choice < 8 {
                let id = live[rng.gen_range(0..live.len())];
                let path = PathBuf::from(format!("/s{seed}/m{n}-{k}.png"));
                batch.rename(id, &path).unwrap();
                ops.push(Op::Rename(id, path));
            } else {
                let id = live.swap_remove(rng.gen_range(0..live.len()));
                batch.remove(id).unwrap();
                ops.push(Op::Remove(id));
            }
        }
        writeln!(stdout, "BEGIN {}", format_ops(&ops)).unwrap();
        stdout.flush().unwrap();
        batch.commit().unwrap();
        writeln!(stdout, "COMMIT").unwrap();
        stdout.flush().unwrap();
    }
}

fn store_state(dir: &Path) -> BTreeMap<u64, PathBuf> {
    let store = Store::open(dir).expect("store reopens after a kill");
    let report = store.check_integrity().unwrap();
    assert!(
        report.is_ok(),
        "integrity after kill: {:?}",
        report.problems
    );
    let mut state = BTreeMap::new();
    for item in store.images() {
        let (id, rec) = item.unwrap();
        assert_eq!(
            store.embedding(id).unwrap(),
            Some(embedding_for(id)),
            "image {id}"
        );
        assert_eq!(store.id_for_path(&rec.path).unwrap(), Some(id));
        state.insert(id, rec.path);
    }
    state
}

#[test]
fn committed_batches_survive_sigkill_at_random_moments() {
    let seed: u64 = std::env::var("GLIMPSE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash test seed: {seed} (rerun with GLIMPSE_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut expected: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut kills = 0;
    let mut committed_total = 0;

    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_SEED, seed.wrapping_add(round as u64).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        std::thread::sleep(Duration::from_millis(rng.gen_range(60..400)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL on Unix
            kills += 1;
        }
        let status = child.wait().unwrap();
        let lines = reader.join().unwrap();

        let mut in_flight: Option<Vec<Op>> = None;
        let mut committed = 0;
        for line in &lines {
            // libtest may print "test crash_child ... " on the same line as the first report.
            if let Some(pos) = line.find("BEGIN ") {
                in_flight = Some(parse_ops(&line[pos + 6..]));
            } else if line.ends_with("COMMIT") {
                apply(
                    &mut expected,
                    &in_flight.take().expect("COMMIT after BEGIN"),
                );
                committed += 1;
            }
        }
        committed_total += committed;
        let actual = store_state(dir.path());
        if actual != expected {
            let ops = in_flight.expect("state differs but no batch was in flight");
            apply(&mut expected, &ops);
            assert_eq!(
                actual, expected,
                "round {round} (seed {seed}): state is neither the committed batches nor those \
                 plus the whole in-flight batch; child {status:?}"
            );
        }
        println!(
            "round {round}: {committed} batches committed, {} images",
            expected.len()
        );
    }
    assert!(kills >= 10, "only {kills} kills landed");
    assert!(committed_total > 0, "the child never committed");
}
