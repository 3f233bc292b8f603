//! Mutation fuzzing on stable Rust, bounded in time, over the parsers tenants reach: the
//! create body (parse, limits, validation, tile count), the AOI/GeoJSON parser, evalscript
//! `setup()` parsing, and the COG reader over arbitrary bytes. The property is the
//! standard's: bad input is an error, never a panic.
//!
//! Why not cargo-fuzz: libFuzzer needs nightly with sanitizer flags, which rebuilds every
//! dependency (boa, wasmtime, object_store) instrumented: too slow on this 2-core machine
//! for the test suite. This is a plain mutator (byte flips, splices, inserted JSON/JS
//! tokens) without coverage feedback, seeded from the committed corpus in `fuzz/corpus/`.
//! Inputs that once broke a target live in `fuzz/regressions/<target>/` and run first.
//!
//! Each target runs `TESSERA_FUZZ_SECS` seconds (default 3; `tests/run_all.sh` can raise
//! it). A failing input is written to `target/fuzz-crashes/` and named in the failure.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

const DICT_JSON: &[&str] = &[
    "null",
    "true",
    "[]",
    "{}",
    "\"\"",
    "0",
    "-1",
    "1e308",
    "-1e308",
    "1e-320",
    "32767",
    "9223372036854775807",
    "18446744073709551615",
    "0.0001",
    "\"bbox\"",
    "\"geometry\"",
    "\"coordinates\"",
    "\"Polygon\"",
    "\"MultiPolygon\"",
    "\"bufferX\"",
    "\"resolution\"",
    "\"tilingGrid\"",
    "\"id\"",
    "\"type\"",
    "\"byoc-../../x\"",
    "\"\\u0000\"",
    "[[[0,0],[1,0],[0,1]]]",
    "\"http://www.opengis.net/def/crs/EPSG/0/32633\"",
    "\"EPSG:3857\"",
    "\"description\"",
    "\"defaultTilePath\"",
    "\"<tileName>\"",
    "\"responses\"",
    ",",
    ":",
    "[",
    "]",
    "{",
    "}",
];
const DICT_JS: &[&str] = &[
    "setup",
    "return",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ";",
    ",",
    "input",
    "output",
    "bands",
    "sampleType",
    "\"UINT8\"",
    "\"FLOAT32\"",
    "mosaicking",
    "\"ORBIT\"",
    "\"TILE\"",
    "units",
    "\"DN\"",
    "datasource",
    "id",
    "null",
    "undefined",
    "-1",
    "7",
    "function",
    "=>",
    "\"",
    "//VERSION=3\n",
    "evaluatePixel",
    "this",
    "Symbol()",
    "[1,2]",
    "{id: 1}",
];

/// xorshift64*: deterministic per seed, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>], dict: &[&str]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = rng.next() as u8;
            }
            2 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(16)).min(len);
                out.drain(a..b);
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                let piece = out[a..b].to_vec();
                let at = rng.below(out.len() + 1);
                out.splice(at..at, piece);
            }
            4 => {
                let token = dict[rng.below(dict.len())].as_bytes();
                let at = rng.below(len + 1);
                out.splice(at..at, token.iter().copied());
            }
            5 if len > 0 => {
                // Replace a run with a dictionary token (keeps JSON plausible).
                let a = rng.below(len);
                let b = (a + 1 + rng.below(8)).min(len);
                let token = dict[rng.below(dict.len())].as_bytes();
                out.splice(a..b, token.iter().copied());
            }
            _ => {
                // Splice with another corpus entry.
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() && len > 0 {
                    let cut = rng.below(len);
                    let from = rng.below(other.len());
                    out.truncate(cut);
                    out.extend_from_slice(&other[from..]);
                }
            }
        }
    }
    out.truncate(1 << 16);
    out
}

fn read_dir(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn budget() -> Duration {
    let secs = std::env::var("TESSERA_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs.max(0.0))
}

/// Runs `target` on the regressions, the corpus, then mutants until the time budget ends.
/// Returns the number of inputs run.
fn fuzz(name: &str, dict: &[&str], target: impl Fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = read_dir(&root.join("corpus").join(name));
    assert!(!corpus.is_empty(), "fuzz/corpus/{name} is empty");
    let regressions = read_dir(&root.join("regressions").join(name));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
    let _ = std::fs::create_dir_all(&dir);
    // An allocation failure aborts the process (no unwinding): the input about to run is
    // kept here so an abort can be replayed.
    let last = dir.join(format!("{name}.last"));
    let run = |input: &[u8]| {
        let _ = std::fs::write(&last, input);
        if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
            let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ *b as u64).wrapping_mul(0x100_0000_01b3)
            });
            let path = dir.join(format!("{name}-{hash:016x}"));
            let _ = std::fs::write(&path, input);
            panic!(
                "fuzz target {name} panicked on {} (copy it to fuzz/regressions/{name}/ once fixed)",
                path.display()
            );
        }
    };
    for input in regressions.iter().chain(&corpus) {
        run(input);
    }
    let seed = std::env::var("TESSERA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15u64);
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + budget();
    let mut n = regressions.len() + corpus.len();
    while Instant::now() < deadline {
        let base = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, base, &corpus, dict);
        run(&input);
        n += 1;
    }
    let _ = std::fs::remove_file(&last);
    n
}

fn create_target(bytes: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(bytes) else {
        return;
    };
    let limits = crate::api::Limits::default();
    let Ok(normalised) = crate::api::normalise_create(&body) else {
        return;
    };
    if crate::api::limits::check_body(&normalised, &limits).is_err() {
        return;
    }
    let Ok(spec) = crate::api::validate(&normalised) else {
        return;
    };
    let _ = spec.aoi.area_km2();
    // Small limit: a mutant may ask for the whole world.
    let _ = crate::grid::count_tiles_with_limit(&spec.aoi, &spec.tiling, 2_000);
    let _ = crate::api::validate_update(&body);
}

fn aoi_target(bytes: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return;
    };
    if let Ok(aoi) = crate::grid::parse_bounds(&v) {
        let _ = aoi.area_km2();
        let _ = aoi.to_geojson();
        let spec = crate::grid::TilingSpec::new(1, 60.0);
        let _ = crate::grid::count_tiles_with_limit(&aoi, &spec, 2_000);
    }
    if let Some(g) = v.get("geometry") {
        let _ = crate::grid::aoi_from_geojson(g);
    }
}

fn setup_target(bytes: &[u8]) {
    let Ok(source) = std::str::from_utf8(bytes) else {
        return;
    };
    let _ = crate::evalscript::Program::compile(source);
}

fn cog_target(bytes: &[u8]) {
    use crate::raster::cog::{Cog, MemSource};
    let source = Arc::new(MemSource {
        name: "fuzz.tif".into(),
        bytes: bytes.to_vec(),
    });
    if let Ok(mut cog) = Cog::open(source) {
        for level in 0..cog.levels.len().min(3) {
            let _ = cog.read_window(level, 0, 0, 64, 64);
            let _ = cog.read_window(level, 7, 3, 5, 9);
        }
    }
}

#[test]
fn fuzz_create_body() {
    let n = fuzz("create", DICT_JSON, create_target);
    assert!(n > 10, "only {n} inputs ran");
}

#[test]
fn fuzz_aoi_parser() {
    let n = fuzz("aoi", DICT_JSON, aoi_target);
    assert!(n > 10, "only {n} inputs ran");
}

#[test]
fn fuzz_setup_parsing() {
    let n = fuzz("setup", DICT_JS, setup_target);
    assert!(n > 5, "only {n} inputs ran");
}

#[test]
fn fuzz_cog_reader() {
    let n = fuzz(
        "cog",
        &["\0\0\0\0", "\u{ff}\u{ff}", "II*\0", "MM\0*"],
        cog_target,
    );
    assert!(n > 10, "only {n} inputs ran");
}

#[test]
fn the_mutator_changes_inputs_and_is_deterministic() {
    let corpus = vec![b"{\"a\": [1, 2]}".to_vec()];
    let run = || {
        let mut rng = Rng(42);
        (0..50)
            .map(|_| mutate(&mut rng, &corpus[0], &corpus, DICT_JSON))
            .collect::<Vec<_>>()
    };
    let a = run();
    assert_eq!(a, run());
    assert!(a.iter().filter(|m| **m != corpus[0]).count() > 40);
}
