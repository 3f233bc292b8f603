//! What `tessera bench evalscript` and `cargo bench --bench wasm` share: the same input
//! arrays, the same timing rule and the same peers (a native Rust NDVI loop, and node
//! calling `evaluatePixel` per pixel), so both report comparable figures.
//!
//! Benchmark support only: not part of the engine.

use std::time::{Duration, Instant};

/// Deterministic reflectance-like values in [0.02, 0.5) (`dataMask`: 1), the same arrays
/// for every tier and for node.
pub fn synthetic_band(name: &str, seed: u32, len: usize) -> Vec<f32> {
    if name == "dataMask" {
        return vec![1.0; len];
    }
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            0.02 + (state >> 8) as f32 / (1u32 << 24) as f32 * 0.48
        })
        .collect()
}

/// Pixels per second of the best of at least `min_runs` calls of `f` over `pixels` pixels.
pub fn best_rate<E>(
    pixels: usize,
    min_runs: usize,
    mut f: impl FnMut() -> Result<(), E>,
) -> Result<f64, E> {
    // More runs (up to 200) while under half a second: on a busy machine the best of many
    // short runs is the one that got a core to itself.
    let mut best = Duration::MAX;
    let begun = Instant::now();
    let mut runs = 0;
    while runs < min_runs || (runs < 200 && begun.elapsed().as_secs_f64() < 0.5) {
        let started = Instant::now();
        f()?;
        best = best.min(started.elapsed());
        runs += 1;
    }
    Ok(pixels as f64 / best.as_secs_f64().max(1e-9))
}

/// NDVI over f32 planes in plain Rust: the reference for what one core can do.
pub fn native_ndvi(b04: &[f32], b08: &[f32], out: &mut [f64]) {
    for ((o, r), n) in out.iter_mut().zip(b04).zip(b08) {
        let (r, n) = (f64::from(*r), f64::from(*n));
        *o = (n - r) / (n + r);
    }
}

/// The per-pixel node harness and the helper library it loads (the one boa runs), built
/// in so the command works from any directory.
const NODE_HARNESS: &str = include_str!("../benches/node_evalscript.js");
const PRELUDE: &str = include_str!("evalscript/prelude.js");

/// Runs the script's `evaluatePixel` once per pixel in node over the first `pixels` of
/// each of `planes`: px/s, or why not (node missing or failing).
pub fn node_rate(
    script: &std::path::Path,
    planes: &[Vec<f32>],
    pixels: usize,
) -> Result<f64, String> {
    let dir = std::env::temp_dir().join(format!("tessera-bench-node-{}", std::process::id()));
    let result = (|| {
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut bytes = Vec::with_capacity(planes.len() * pixels * 4);
        for v in planes {
            for x in &v[..pixels.min(v.len())] {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
        }
        let data = dir.join("bands.f32");
        std::fs::write(&data, &bytes).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("harness.js"), NODE_HARNESS).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("prelude.js"), PRELUDE).map_err(|e| e.to_string())?;
        let output = std::process::Command::new("node")
            .arg(dir.join("harness.js"))
            .arg(dir.join("prelude.js"))
            .arg(script)
            .arg(&data)
            .arg(pixels.to_string())
            .output()
            .map_err(|e| format!("node is not available ({e})"))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let first = stderr.lines().find(|l| l.contains("Error")).unwrap_or("");
            return Err(format!("node failed: {first}"));
        }
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("px/s "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .ok_or_else(|| "node printed no rate".to_string())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_are_deterministic_reflectances_and_datamask_is_one() {
        let a = synthetic_band("B04", 1, 1000);
        assert_eq!(a, synthetic_band("B04", 1, 1000));
        assert_ne!(a, synthetic_band("B04", 2, 1000));
        assert!(a.iter().all(|v| (0.02..0.5).contains(v)));
        assert!(synthetic_band("dataMask", 7, 5).iter().all(|&v| v == 1.0));
    }

    #[test]
    fn native_ndvi_is_the_formula() {
        let mut out = [0.0; 2];
        native_ndvi(&[0.25, 0.5], &[0.75, 0.5], &mut out);
        assert_eq!(out, [0.5, 0.0]);
    }
}
