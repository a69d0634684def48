//! Block sizes chosen per CPU from its cache sizes, read once at run time.
//!
//! The rule (docs/PERFORMANCE.md, "Kernel sets per CPU"):
//! - **L1d → the AVX2 pass** ([`Blocking::avx2_pass`]): the AVX2 kernel walks a row group's
//!   reduction block in passes whose slice of `B` (`pass × NR` floats) and of `A`
//!   (`MR × pass`) take at most half of the L1 data cache, so the sub-tiles of the group read
//!   them from L1. A multiple of 16 units between 32 and 256: 128 for a 48 KB L1d, 80 for
//!   32 KB.
//! - **L2 → the row groups per tile** ([`Blocking::tile_groups`]): the packed `A` of a tile's
//!   row groups (`groups × MR × S` floats, `S` the reduction block) takes at most half of L2
//!   next to the `B` panel slice that streams through it (`S × NR` floats), so each panel
//!   of `B` comes from L3 or memory once per tile and is then reused by every group from
//!   L2/L1. Between 1 and 16 groups: 16 for a 2 MB L2, 4 for 512 KB, 1 for 256 KB.
//! - **The reduction block** `S` ([`KC_UNITS`](super::KC_UNITS)) stays fixed: the kernels
//!   are compiled for it (the packed `A`'s row stride is a constant). Its `B` slice
//!   (96 KB in f32) fits every L2 of the CPUs the kernels target.
//!
//! The sizes come from `/sys/devices/system/cpu/cpu0/cache` on Linux, else from CPUID
//! (leaf 4 on Intel, `0x8000_001D` on AMD), else the defaults of a 32 KB L1d and a 1 MB L2.

use std::sync::OnceLock;

use super::{MR, NR};

/// The block sizes of this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocking {
    /// L1 data cache per core, bytes.
    pub l1d: usize,
    /// L2 cache per core, bytes.
    pub l2: usize,
    /// Where the sizes came from: `"sysfs"`, `"cpuid"` or `"default"`.
    pub source: &'static str,
    /// Reduction units per pass of the AVX2 kernel (see the module docs).
    pub avx2_pass: usize,
    /// Row groups of `MR` rows per tile for a reduction block of `KC_UNITS` f32 units.
    pub tile_groups: usize,
}

impl Blocking {
    /// The block sizes for caches of `l1d` and `l2` bytes.
    pub fn for_caches(l1d: usize, l2: usize, source: &'static str) -> Self {
        let per_unit = (NR + MR) * 4;
        let avx2_pass = ((l1d / 2) / per_unit / 16 * 16).clamp(32, 256);
        let block = super::KC_UNITS;
        let a_group = MR * block * 4;
        let b_slice = block * NR * 4;
        let tile_groups = ((l2 / 2).saturating_sub(b_slice) / a_group).clamp(1, 16);
        Self {
            l1d,
            l2,
            source,
            avx2_pass,
            tile_groups,
        }
    }

    /// This CPU's block sizes (read once, then cached).
    pub fn get() -> Blocking {
        static BLOCKING: OnceLock<Blocking> = OnceLock::new();
        *BLOCKING.get_or_init(|| {
            let (l1d, l2, source) = match sysfs().or_else(cpuid) {
                Some((l1d, l2, source)) => (l1d, l2, source),
                None => (32 << 10, 1 << 20, "default"),
            };
            Blocking::for_caches(l1d, l2, source)
        })
    }
}

/// `(L1d, L2, "sysfs")` from Linux's cache description of CPU 0.
fn sysfs() -> Option<(usize, usize, &'static str)> {
    let dir = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
    let (mut l1d, mut l2) = (None, None);
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let read = |name: &str| std::fs::read_to_string(entry.path().join(name)).ok();
        let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size"))
        else {
            continue;
        };
        let size = parse_size(&size)?;
        match (level.trim(), kind.trim()) {
            ("1", "Data") => l1d = Some(size),
            ("2", "Unified" | "Data") => l2 = Some(size),
            _ => {}
        }
    }
    Some((l1d?, l2?, "sysfs"))
}

/// `"48K"`, `"2048K"`, `"2M"` or a plain byte count.
fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (digits, scale) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1 << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        _ => (s, 1),
    };
    digits.parse::<usize>().ok().map(|v| v * scale)
}

/// `(L1d, L2, "cpuid")` from CPUID's deterministic cache parameters.
#[cfg(target_arch = "x86_64")]
fn cpuid() -> Option<(usize, usize, &'static str)> {
    use std::arch::x86_64::__cpuid_count;
    // Leaf 4 (Intel) or 0x8000_001D (AMD, same format); `__cpuid_count` is safe on x86-64.
    let vendor = __cpuid_count(0, 0);
    let amd = vendor.ebx == u32::from_le_bytes(*b"Auth");
    let leaf = if amd { 0x8000_001D } else { 4 };
    let (mut l1d, mut l2) = (None, None);
    for sub in 0..16 {
        let r = __cpuid_count(leaf, sub);
        let kind = r.eax & 0x1f;
        if kind == 0 {
            break;
        }
        let level = (r.eax >> 5) & 0x7;
        let ways = ((r.ebx >> 22) & 0x3ff) as usize + 1;
        let partitions = ((r.ebx >> 12) & 0x3ff) as usize + 1;
        let line = (r.ebx & 0xfff) as usize + 1;
        let sets = r.ecx as usize + 1;
        let size = ways * partitions * line * sets;
        match (level, kind) {
            (1, 1) => l1d = Some(size),
            (2, 1 | 3) => l2 = Some(size),
            _ => {}
        }
    }
    Some((l1d?, l2?, "cpuid"))
}

#[cfg(not(target_arch = "x86_64"))]
fn cpuid() -> Option<(usize, usize, &'static str)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_caches() {
        // This project's Xeon (48 KB L1d, 2 MB L2), a Zen 3 (32 KB, 512 KB), a Skylake
        // client core (32 KB, 256 KB).
        let xeon = Blocking::for_caches(48 << 10, 2 << 20, "test");
        assert_eq!((xeon.avx2_pass, xeon.tile_groups), (128, 16));
        let zen3 = Blocking::for_caches(32 << 10, 512 << 10, "test");
        assert_eq!((zen3.avx2_pass, zen3.tile_groups), (80, 4));
        let skl = Blocking::for_caches(32 << 10, 256 << 10, "test");
        assert_eq!((skl.avx2_pass, skl.tile_groups), (80, 1));
        assert_eq!(parse_size("48K"), Some(48 << 10));
        assert_eq!(parse_size("2M\n"), Some(2 << 20));
        assert_eq!(parse_size("65536"), Some(65536));
    }

    #[test]
    fn this_cpu_reports_its_caches() {
        let b = Blocking::get();
        println!("{b:?}");
        assert!(b.l1d >= 8 << 10 && b.l2 >= b.l1d, "{b:?}");
        #[cfg(target_os = "linux")]
        assert_eq!(b.source, "sysfs", "{b:?}");
    }
}
