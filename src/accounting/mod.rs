//! Processing units (PU): estimate, per-tile cost, reservation and settlement.
//!
//! Rules from `batch-api.md` §11: a tile's PU is the product of an area factor, an input
//! band factor, an output format factor and the number of data samples; batch bills tiles
//! of at least 10 000 px at one third; a batch request costs at least 100 PU.
//!
//! Decisions on the points the docs leave open:
//! * **Buffer pixels count.** They are output pixels (the written raster includes them), so
//!   callers pass the buffered size (`tileWidthPx + 2·bufferX`, likewise for height) as
//!   `width_px`/`height_px`; the 10 000 px threshold uses the same size.
//! * **Several outputs.** The format factor is taken once, as the largest over all outputs:
//!   any FLOAT32 output makes the tile ×2. Outputs are not summed, because the docs price a
//!   request by its input reads and one output size, and a multi-output batch tile reads its
//!   input once.
//! * **Data fusion.** Every collection Tessera serves is local, so the fusion factor is the
//!   number of datasources; it is folded into the sample factor ([`estimate_samples_fused`],
//!   [`charged_samples`]). With ORBIT/TILE fusion the sample count is the largest over the
//!   datasources (each pixel holds that many scenes of the busiest source).
//! * **Actual samples.** A processed ORBIT/TILE tile is charged for the scenes
//!   `evaluatePixel` saw (after `preProcessScenes`/`filterScenes`); the estimate assumes one
//!   every 3 days. A tile whose area had no scene is charged nothing.
//! * Sentinel-1 processing and octet-stream factors are not modelled: Tessera has no such
//!   collections or formats yet.

/// Output pixels worth one area unit (512 × 512).
pub const PIXELS_PER_AREA_UNIT: f64 = 512.0 * 512.0;
/// The area factor never goes below this for a non-empty tile.
pub const MIN_AREA_FACTOR: f64 = 0.01;
/// Tiles with at least this many pixels are billed at [`BATCH_FACTOR`].
pub const BATCH_FACTOR_MIN_PIXELS: u64 = 10_000;
/// The batch discount on large tiles.
pub const BATCH_FACTOR: f64 = 1.0 / 3.0;
/// The minimum charge of a batch request that charged anything.
pub const MIN_REQUEST_PU: f64 = 100.0;
/// `valueEstimate` assumes one ORBIT/TILE sample per this many days.
pub const DAYS_PER_ESTIMATED_SAMPLE: f64 = 3.0;

/// The band that marks valid pixels; it is free unless it is the only band read.
const DATA_MASK: &str = "dataMask";

/// What a tile's PU depend on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TileCostInputs {
    /// Output width in pixels, buffer included.
    pub width_px: u64,
    /// Output height in pixels, buffer included.
    pub height_px: u64,
    /// Billable input bands: use [`count_input_bands`] on the evalscript's input band names.
    pub input_bands: usize,
    /// True if any output is FLOAT32 (×2).
    pub output_float32: bool,
    /// Samples per pixel: 1 for SIMPLE mosaicking, else the scenes used (or
    /// [`estimate_samples`] before processing).
    pub samples: f64,
}

/// Billable input bands: every band except `dataMask`, which counts only when it is the
/// only band requested. Names from all inputs (data fusion) are counted together.
pub fn count_input_bands<S: AsRef<str>>(band_names: &[S]) -> usize {
    let others = band_names
        .iter()
        .filter(|b| b.as_ref() != DATA_MASK)
        .count();
    if others == 0 && !band_names.is_empty() {
        1
    } else {
        others
    }
}

/// PU of one tile without the batch discount: what `valueEstimate` sums.
///
/// An empty tile (zero pixels) costs 0; otherwise the area factor is at least 0.01. A script
/// that declares no input band is billed as one band, so a non-empty tile never costs
/// nothing. Negative or NaN samples count as 0 (no data read).
pub fn tile_estimate(i: &TileCostInputs) -> f64 {
    let pixels = i.width_px as f64 * i.height_px as f64;
    if pixels == 0.0 {
        return 0.0;
    }
    let area = (pixels / PIXELS_PER_AREA_UNIT).max(MIN_AREA_FACTOR);
    let bands = i.input_bands.max(1) as f64 / 3.0;
    let format = if i.output_float32 { 2.0 } else { 1.0 };
    let samples = if i.samples > 0.0 { i.samples } else { 0.0 };
    area * bands * format * samples
}

/// PU charged for one tile: [`tile_estimate`] × 1/3 when the tile has at least 10 000 px.
pub fn tile_cost(i: &TileCostInputs) -> f64 {
    let estimate = tile_estimate(i);
    if i.width_px.saturating_mul(i.height_px) >= BATCH_FACTOR_MIN_PIXELS {
        estimate * BATCH_FACTOR
    } else {
        estimate
    }
}

/// Samples per pixel assumed by the analysis estimate.
///
/// SIMPLE mosaicking reads one sample. ORBIT/TILE assume one sample every 3 days, rounded
/// down and at least 1: 1–31 Jan gives 10 whether `days_in_range` is 30 (midnight to
/// midnight) or just under 31 (to 23:59:59). A tiny tolerance keeps 29.999999… (float
/// time arithmetic) at 10. Non-finite or negative ranges give 1.
pub fn estimate_samples(mosaicking_simple: bool, days_in_range: f64) -> f64 {
    if mosaicking_simple || !days_in_range.is_finite() {
        return 1.0;
    }
    (days_in_range / DAYS_PER_ESTIMATED_SAMPLE + 1e-9)
        .floor()
        .max(1.0)
}

/// Milliseconds in a day.
const DAY_MS: f64 = 86_400_000.0;

/// Length of a `timeRange` in days (fractional), from epoch milliseconds; `None` when the
/// request has no time range, which [`estimate_samples`] treats as one sample.
pub fn days_in_range(range_ms: Option<(i64, i64)>) -> f64 {
    match range_ms {
        Some((from, to)) => (to as f64 - from as f64) / DAY_MS,
        None => f64::NAN,
    }
}

/// Samples per pixel assumed by the analysis estimate, data fusion included: each of the
/// `ranges` is one datasource's time range in days (see [`days_in_range`]). SIMPLE counts
/// one sample per datasource; ORBIT/TILE the largest per-source [`estimate_samples`];
/// both × the number of datasources (the fusion factor, all collections local). Without
/// fusion (one range) this is [`estimate_samples`].
pub fn estimate_samples_fused(mosaicking_simple: bool, ranges: &[f64]) -> f64 {
    let per_source = ranges
        .iter()
        .map(|&days| estimate_samples(mosaicking_simple, days))
        .fold(1.0, f64::max);
    per_source * ranges.len().max(1) as f64
}

/// Samples per pixel charged for a processed tile: `scenes_used` holds the scenes each
/// datasource's `evaluatePixel` saw (one entry without fusion). SIMPLE is 1 per datasource;
/// ORBIT/TILE the largest count (0 when no scene touched the tile); × the number of
/// datasources when fusing.
pub fn charged_samples(mosaicking_simple: bool, scenes_used: &[usize]) -> f64 {
    let sources = scenes_used.len().max(1) as f64;
    let per_source = if mosaicking_simple {
        1.0
    } else {
        scenes_used.iter().copied().max().unwrap_or(0) as f64
    };
    per_source * sources
}

/// The outcome of settling a request's PU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settlement {
    /// Added on top of the tile costs to reach [`MIN_REQUEST_PU`].
    pub minimum_top_up: f64,
    /// Reserved PU given back.
    pub refund: f64,
    /// What the request costs in total: tile costs + `minimum_top_up`.
    pub total_charged: f64,
}

/// Settles a request from its **cumulative** totals: `reserved` is everything ever reserved
/// for it (all starts and restarts) and `charged` the sum of its tile costs.
///
/// Because it depends only on totals, the engine can call it again whenever totals change
/// (late tiles after a cancel, a restartpartial run) and store the result in place of the
/// previous one: nothing is ever charged or refunded twice.
///
/// * Nothing charged (canceled before any tile ran, or zero tiles): no minimum, full refund.
/// * Otherwise the request costs at least [`MIN_REQUEST_PU`].
/// * The refund is what was reserved beyond the total cost, never negative. If actual tiles
///   cost more than reserved (the estimate assumed fewer samples), the refund is 0 and
///   `total_charged` still states the full cost: the reservation is an estimate, not a cap.
pub fn settle(reserved: f64, charged: f64) -> Settlement {
    let charged = non_negative(charged);
    let minimum_top_up = if charged > 0.0 {
        (MIN_REQUEST_PU - charged).max(0.0)
    } else {
        0.0
    };
    let total_charged = charged + minimum_top_up;
    Settlement {
        minimum_top_up,
        refund: (non_negative(reserved) - total_charged).max(0.0),
        total_charged,
    }
}

/// PU to reserve when processing (re)starts.
///
/// `remaining_tile_costs_sum` is the sum of [`tile_cost`] (batch factor included, estimated
/// samples) over the tiles about to run; `already_charged` the request's tile costs so far
/// (0 on the first start). The reservation covers the worst case of this run: all remaining
/// tiles, and at least what the minimum could still add,
/// `max(remaining, MIN_REQUEST_PU - already_charged, 0)`. With nothing left to run nothing
/// can be charged, so nothing is reserved. The result adds to the cumulative `reserved`
/// passed to [`settle`].
pub fn reservation(remaining_tile_costs_sum: f64, already_charged: f64) -> f64 {
    let remaining = non_negative(remaining_tile_costs_sum);
    if remaining == 0.0 {
        return 0.0;
    }
    remaining
        .max(MIN_REQUEST_PU - non_negative(already_charged))
        .max(0.0)
}

/// Clamps negative and NaN amounts to 0 so a bad total never produces a negative refund.
fn non_negative(x: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    macro_rules! assert_close {
        ($a:expr, $b:expr) => {{
            let (a, b): (f64, f64) = ($a, $b);
            assert!(close(a, b), "{} = {a}, expected {b}", stringify!($a));
        }};
    }

    fn tile(w: u64, h: u64, bands: usize, float32: bool, samples: f64) -> TileCostInputs {
        TileCostInputs {
            width_px: w,
            height_px: h,
            input_bands: bands,
            output_float32: float32,
            samples,
        }
    }

    #[test]
    fn worked_check_without_sentinel1_factor() {
        // §11: 1024² px (area 4) × 4 bands (4/3) × FLOAT32 (2) × 2 samples = 64/3.
        let t = tile(1024, 1024, 4, true, 2.0);
        assert_close!(tile_estimate(&t), 64.0 / 3.0);
        // With the S1 ortho ×2 the docs give 42.667.
        assert!((tile_estimate(&t) * 2.0 - 42.667).abs() < 5e-4);
        assert_close!(tile_cost(&t), 64.0 / 9.0);
    }

    #[test]
    fn one_pu_reference_tile() {
        // The PU definition: 512 × 512 px, 3 bands, 1 sample, ≤16-bit output.
        assert_close!(tile_estimate(&tile(512, 512, 3, false, 1.0)), 1.0);
        assert_close!(tile_cost(&tile(512, 512, 3, false, 1.0)), 1.0 / 3.0);
        assert_close!(
            tile_estimate(&tile(1000, 1000, 3, false, 1.0)),
            1e6 / 262_144.0
        );
    }

    #[test]
    fn area_minimum_and_empty_tile() {
        // 10 × 10 px = 0.00038 area units -> 0.01; small tile, so no batch factor.
        assert_close!(tile_estimate(&tile(10, 10, 3, false, 1.0)), 0.01);
        assert_close!(tile_cost(&tile(10, 10, 3, false, 1.0)), 0.01);
        assert_close!(tile_estimate(&tile(1, 1, 6, true, 1.0)), 0.04);
        // 0.01 × 262144 = 2621.44 px: 2622 px is just above the minimum.
        assert_close!(
            tile_estimate(&tile(2622, 1, 3, false, 1.0)),
            2622.0 / 262_144.0
        );
        assert_eq!(tile_estimate(&tile(0, 500, 3, false, 1.0)), 0.0);
        assert_eq!(tile_cost(&tile(500, 0, 3, false, 1.0)), 0.0);
    }

    #[test]
    fn batch_factor_threshold_is_exactly_10000_px() {
        assert_close!(
            tile_cost(&tile(100, 100, 3, false, 1.0)),
            10_000.0 / 262_144.0 / 3.0
        );
        assert_close!(
            tile_cost(&tile(10_000, 1, 3, false, 1.0)),
            10_000.0 / 262_144.0 / 3.0
        );
        assert_close!(
            tile_cost(&tile(99, 101, 3, false, 1.0)),
            9_999.0 / 262_144.0
        );
        assert_close!(
            tile_cost(&tile(101, 99, 3, false, 1.0)),
            9_999.0 / 262_144.0
        );
    }

    #[test]
    fn data_mask_rule() {
        assert_eq!(count_input_bands(&["B04", "B08", "dataMask"]), 2);
        assert_eq!(count_input_bands(&["dataMask", "B02"]), 1);
        assert_eq!(count_input_bands(&["dataMask"]), 1);
        assert_eq!(count_input_bands(&["dataMask", "dataMask"]), 1);
        assert_eq!(count_input_bands(&["B01"]), 1);
        assert_eq!(count_input_bands::<&str>(&[]), 0);
        // Case matters: "datamask" is not the mask band.
        assert_eq!(count_input_bands(&["datamask", "B01"]), 2);
        let names = vec![
            String::from("B02"),
            String::from("B03"),
            String::from("B04"),
        ];
        assert_eq!(count_input_bands(&names), 3);
    }

    #[test]
    fn band_format_and_sample_factors() {
        let base = tile(512, 512, 3, false, 1.0);
        assert_close!(
            tile_estimate(&TileCostInputs {
                input_bands: 6,
                ..base
            }),
            2.0
        );
        assert_close!(
            tile_estimate(&TileCostInputs {
                input_bands: 1,
                ..base
            }),
            1.0 / 3.0
        );
        // No declared band is billed as one.
        assert_close!(
            tile_estimate(&TileCostInputs {
                input_bands: 0,
                ..base
            }),
            1.0 / 3.0
        );
        assert_close!(
            tile_estimate(&TileCostInputs {
                output_float32: true,
                ..base
            }),
            2.0
        );
        assert_close!(
            tile_estimate(&TileCostInputs {
                samples: 10.0,
                ..base
            }),
            10.0
        );
        assert_eq!(
            tile_estimate(&TileCostInputs {
                samples: 0.0,
                ..base
            }),
            0.0
        );
        assert_eq!(
            tile_estimate(&TileCostInputs {
                samples: -3.0,
                ..base
            }),
            0.0
        );
        assert_eq!(
            tile_estimate(&TileCostInputs {
                samples: f64::NAN,
                ..base
            }),
            0.0
        );
    }

    #[test]
    fn estimated_samples() {
        assert_eq!(estimate_samples(true, 31.0), 1.0);
        assert_eq!(estimate_samples(true, 365.0), 1.0);
        assert_eq!(estimate_samples(false, 30.0), 10.0);
        assert_eq!(estimate_samples(false, 30.0 + 86_399.0 / 86_400.0), 10.0);
        assert_eq!(estimate_samples(false, 31.0), 10.0);
        assert_eq!(estimate_samples(false, 29.999_999_999_9), 10.0);
        assert_eq!(estimate_samples(false, 32.9), 10.0);
        assert_eq!(estimate_samples(false, 33.0), 11.0);
        assert_eq!(estimate_samples(false, 365.0), 121.0);
        assert_eq!(estimate_samples(false, 2.0), 1.0);
        assert_eq!(estimate_samples(false, 0.0), 1.0);
        assert_eq!(estimate_samples(false, -4.0), 1.0);
        assert_eq!(estimate_samples(false, f64::NAN), 1.0);
        assert_eq!(estimate_samples(false, f64::INFINITY), 1.0);
    }

    #[test]
    fn days_of_a_time_range() {
        // 1 Jan 2021 00:00 -> 31 Jan 2021 00:00 is 30 days: 10 samples.
        let jan1 = 1_609_459_200_000i64;
        assert_close!(days_in_range(Some((jan1, jan1 + 30 * 86_400_000))), 30.0);
        assert_eq!(
            estimate_samples(false, days_in_range(Some((jan1, jan1 + 30 * 86_400_000)))),
            10.0
        );
        // Half a day.
        assert_close!(days_in_range(Some((0, 43_200_000))), 0.5);
        // No time range: one sample.
        assert_eq!(estimate_samples(false, days_in_range(None)), 1.0);
        // A reversed range counts as one sample.
        assert_eq!(
            estimate_samples(false, days_in_range(Some((86_400_000, 0)))),
            1.0
        );
    }

    #[test]
    fn fused_estimate() {
        // No fusion: the plain rule.
        assert_eq!(estimate_samples_fused(false, &[30.0]), 10.0);
        assert_eq!(estimate_samples_fused(true, &[30.0]), 1.0);
        // Two SIMPLE datasources: fusion factor 2.
        assert_eq!(estimate_samples_fused(true, &[30.0, 365.0]), 2.0);
        // ORBIT over 30 and 9 days: max(10, 3) × 2 sources.
        assert_eq!(estimate_samples_fused(false, &[30.0, 9.0]), 20.0);
        // No range at all still counts one source.
        assert_eq!(estimate_samples_fused(false, &[]), 1.0);
        // 1024² px, 4 bands, FLOAT32, ORBIT over 6 days (2 samples) = 64/3, as in §11.
        let t = tile(1024, 1024, 4, true, estimate_samples_fused(false, &[6.0]));
        assert_close!(tile_estimate(&t), 64.0 / 3.0);
    }

    #[test]
    fn charged_sample_counts() {
        assert_eq!(charged_samples(true, &[1]), 1.0);
        assert_eq!(charged_samples(false, &[6]), 6.0);
        assert_eq!(charged_samples(false, &[0]), 0.0);
        // Fusion: SIMPLE ×2; ORBIT max(3, 5) × 2.
        assert_eq!(charged_samples(true, &[1, 1]), 2.0);
        assert_eq!(charged_samples(false, &[3, 5]), 10.0);
        assert_eq!(charged_samples(false, &[]), 0.0);
        // A 512² px, 3-band, UINT8 ORBIT tile with 4 scenes: 4 PU, charged 4/3.
        let t = tile(512, 512, 3, false, charged_samples(false, &[4]));
        assert_close!(tile_cost(&t), 4.0 / 3.0);
    }

    fn settled(top_up: f64, refund: f64, total: f64) -> Settlement {
        Settlement {
            minimum_top_up: top_up,
            refund,
            total_charged: total,
        }
    }

    #[test]
    fn settle_edge_cases() {
        // Nothing reserved, nothing charged.
        assert_eq!(settle(0.0, 0.0), settled(0.0, 0.0, 0.0));
        // Canceled before any tile ran: full refund, no minimum.
        assert_eq!(settle(150.0, 0.0), settled(0.0, 150.0, 0.0));
        // Small request: topped up to 100, the rest refunded.
        assert_eq!(settle(150.0, 40.0), settled(60.0, 50.0, 100.0));
        // Exactly the minimum.
        assert_eq!(settle(100.0, 100.0), settled(0.0, 0.0, 100.0));
        // Large request, partly used.
        assert_eq!(settle(300.0, 120.0), settled(0.0, 180.0, 120.0));
        // Tiles cost more than reserved: no negative refund, full cost stated.
        assert_eq!(settle(100.0, 130.0), settled(0.0, 0.0, 130.0));
        // Reservation smaller than the minimum.
        assert_eq!(settle(50.0, 10.0), settled(90.0, 0.0, 100.0));
        // Tiny charge still triggers the minimum.
        assert_eq!(settle(100.0, 0.01), settled(99.99, 0.0, 100.0));
        // Bad totals are clamped.
        assert_eq!(settle(-5.0, f64::NAN), settled(0.0, 0.0, 0.0));
    }

    #[test]
    fn reservations() {
        assert_eq!(reservation(50.0, 0.0), 100.0);
        assert_eq!(reservation(250.0, 0.0), 250.0);
        assert_eq!(reservation(10.0, 40.0), 60.0);
        assert_eq!(reservation(10.0, 150.0), 10.0);
        assert_eq!(reservation(0.0, 0.0), 0.0);
        assert_eq!(reservation(0.0, 40.0), 0.0);
        assert_eq!(reservation(-1.0, 0.0), 0.0);
        assert_eq!(reservation(f64::NAN, 0.0), 0.0);
    }

    #[test]
    fn restart_flow_charges_the_minimum_once() {
        // First run: 50 PU of tiles, 40 charged, the rest failed.
        let mut reserved = reservation(50.0, 0.0);
        assert_eq!(reserved, 100.0);
        assert_eq!(settle(reserved, 40.0), settled(60.0, 0.0, 100.0));
        // restartpartial: the failed tiles (10 PU) run and succeed.
        reserved += reservation(10.0, 40.0);
        assert_eq!(reserved, 160.0);
        // Net cost is still the 100 PU minimum; everything else comes back.
        assert_eq!(settle(reserved, 50.0), settled(50.0, 60.0, 100.0));
    }
}
