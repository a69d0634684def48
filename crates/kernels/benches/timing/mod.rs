//! Timing helpers shared by the `blas` and `gemm_cold` benches (a folder without `main.rs`,
//! so Cargo does not take it for a bench of its own).

use std::time::Instant;

/// CPU seconds of this process, all threads (`CLOCK_PROCESS_CPUTIME_ID`): on a machine shared
/// with other work, FLOP per CPU-second is what load does not inflate (spinning worker threads
/// count, so it slightly understates each library).
pub fn cpu_seconds() -> f64 {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid timespec; clock 2 is CLOCK_PROCESS_CPUTIME_ID on Linux.
    let rc = unsafe { clock_gettime(2, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.sec as f64 + ts.nsec as f64 * 1e-9
}

/// Wall and CPU GFLOP/s of `flop` done in `f`.
pub fn rate(flop: f64, f: impl FnOnce()) -> (f64, f64) {
    let (t, c) = (Instant::now(), cpu_seconds());
    f();
    (
        flop / t.elapsed().as_secs_f64() / 1e9,
        flop / (cpu_seconds() - c) / 1e9,
    )
}

/// The median (upper middle for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The environment variable `name` as a number, else `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
