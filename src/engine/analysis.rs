//! Analysis: validate the evalscript, list the tiles, estimate the PU. Runs on a blocking
//! thread (a large area is ~10^5 tiles); the request actor only sees the outcome.

use crate::accounting::{self, TileCostInputs};
use crate::api::{self, BatchSpec};
use crate::evalscript::{Program, SampleType, Setup};
use crate::grid::TilingSpec;
use crate::store::{NewTile, Store};

/// Everything a worker needs to process the tiles of one request.
#[derive(Debug)]
pub struct Job {
    pub request_id: String,
    pub spec: BatchSpec,
    pub setup: Setup,
    /// Index into `setup.outputs` for each of `spec.responses`.
    pub output_index: Vec<usize>,
    /// Day of the scene the sample collection serves (end of the time range).
    pub day: i64,
}

/// Tile size in pixels without buffers, as `tileWidthPx` / `tileHeightPx` report it.
pub fn tile_size_px(t: &TilingSpec) -> (i64, i64) {
    match crate::grid::grid(t.grid_id) {
        Some(g) => (
            (g.tile_width / t.resolution).round() as i64,
            (g.tile_height / t.resolution).round() as i64,
        ),
        None => (0, 0),
    }
}

/// Rebuilds the job of a stored request (after a restart, or on the first tile).
pub fn load_job(store: &Store, id: &str) -> Result<Job, String> {
    let record = store
        .get_request(None, id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("request {id} no longer exists"))?;
    let spec = api::validate(&record.body).map_err(|e| e.to_string())?;
    let program = Program::compile(&spec.evalscript).map_err(|e| format!("evalscript: {e}"))?;
    let setup = program.setup().clone();
    crate::data::check_bands(&spec.collection, &setup.input_bands).map_err(|e| e.to_string())?;
    let output_index =
        spec.responses
            .iter()
            .map(|r| {
                setup
                    .outputs
                    .iter()
                    .position(|o| o.id == r.identifier)
                    .ok_or_else(|| {
                        format!(
                        "processRequest.output.responses names '{}', but the evalscript's setup() \
                         has no output with that id (it has: {})",
                        r.identifier,
                        setup.outputs.iter().map(|o| o.id.as_str()).collect::<Vec<_>>().join(", ")
                    )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
    if spec
        .responses
        .iter()
        .any(|r| r.encoder == crate::output::OutputFormat::Json)
    {
        return Err("the userdata (application/json) output is not supported yet".into());
    }
    let day = spec
        .time_range
        .as_ref()
        .and_then(|(_, to)| crate::data::day_of(to))
        .unwrap_or(0);
    Ok(Job {
        request_id: record.id,
        spec,
        setup,
        output_index,
        day,
    })
}

/// The PU inputs of one tile of this job.
pub fn cost_inputs(job: &Job) -> TileCostInputs {
    let t = &job.spec.tiling;
    let (w, h) = tile_size_px(t);
    TileCostInputs {
        width_px: (w + 2 * t.buffer_x as i64) as u64,
        height_px: (h + 2 * t.buffer_y as i64) as u64,
        input_bands: accounting::count_input_bands(&job.setup.input_bands),
        output_float32: job
            .output_index
            .iter()
            .any(|&i| job.setup.outputs[i].sample_type == SampleType::Float32),
        samples: 1.0,
    }
}

/// Runs the analysis of a request and stores its tiles and estimate.
pub fn analyse(store: &Store, id: &str) -> Result<Job, String> {
    let job = load_job(store, id)?;
    let tiles = crate::grid::tiles(&job.spec.aoi, &job.spec.tiling).map_err(|e| e.to_string())?;
    let inputs = cost_inputs(&job);
    let per_tile_estimate = accounting::tile_estimate(&inputs);
    let per_tile_cost = accounting::tile_cost(&inputs);
    let value_estimate = per_tile_estimate * tiles.len() as f64;
    let n = store
        .store_analysis(
            id,
            tiles.into_iter().map(|t| NewTile {
                id: t.id,
                geometry: serde_json::to_string(&t.wgs84).unwrap_or_else(|_| "[]".into()),
                name: t.name,
                epsg: t.epsg,
                bounds: [t.x_min, t.y_min, t.x_max, t.y_max],
                cost_estimate: per_tile_cost,
            }),
            value_estimate,
        )
        .map_err(|e| e.to_string())?;
    tracing::info!(request = %id, tiles = n, value_estimate, "analysed");
    Ok(job)
}
