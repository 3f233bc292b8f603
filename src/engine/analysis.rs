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
    /// The owner: its outputs are confined to its scope (`outputs`).
    pub client_id: String,
    pub spec: BatchSpec,
    pub setup: Setup,
    /// Index into `setup.outputs` for each of `spec.responses`; `None` for the `userdata`
    /// (application/json) response, which holds `outputMetadata.userData`.
    pub output_index: Vec<Option<usize>>,
    /// What each tile reads: one entry per datasource (one without data fusion), in
    /// `setup.datasources` order.
    pub sources: Vec<JobSource>,
    /// Samples per pixel the analysis estimate assumes (`accounting::estimate_samples_fused`).
    pub estimated_samples: f64,
    /// Created through Batch v2: the hosted v2 artifacts are written beside the outputs.
    pub v2: bool,
    /// Batch v2 delivery credentials: this request's `s3://` outputs are signed with them.
    pub credentials: Option<crate::api::v2::DeliveryCredentials>,
    /// The sinks of this job (the server's, or with `credentials`), built once and shared by
    /// every worker so each request keeps one S3 client.
    sinks: std::sync::OnceLock<crate::output::Sinks>,
    /// A Zarr output's chunk layout, from the stored tiles, once.
    zarr_layout: std::sync::OnceLock<Result<crate::output::zarr::ZarrLayout, String>>,
}

impl Job {
    /// Where this job's outputs go: `base` (the server's sinks), with this request's own
    /// S3 credentials when it has them.
    pub fn sinks(&self, base: &crate::output::Sinks) -> crate::output::Sinks {
        match &self.credentials {
            // The server's sinks as given: their client scope is re-read per tile.
            None => base.clone(),
            Some(k) => self
                .sinks
                .get_or_init(|| request_sinks(base, Some(k), &self.spec.tile_path))
                .clone(),
        }
    }

    /// The chunk layout of this job's Zarr store, from its stored tiles.
    pub fn zarr_layout(&self, store: &Store) -> Result<crate::output::zarr::ZarrLayout, String> {
        self.zarr_layout
            .get_or_init(|| {
                let tiles = store
                    .list_tiles(&self.request_id, None, 0, u64::MAX >> 2)
                    .map_err(|e| e.to_string())?;
                crate::output::zarr::ZarrLayout::from_tiles(
                    tiles
                        .iter()
                        .map(|t| (t.epsg, [t.x_min, t.y_min, t.x_max, t.y_max])),
                    self.spec.tiling.resolution,
                )
                .map_err(|e| e.to_string())
            })
            .clone()
    }
}

/// `base` (the server's sinks), or with a request's own S3 credentials when it has them.
pub fn request_sinks(
    base: &crate::output::Sinks,
    credentials: Option<&crate::api::v2::DeliveryCredentials>,
    tile_path: &str,
) -> crate::output::Sinks {
    match credentials {
        Some(k) => {
            let sinks = base.with_request_s3_credentials(
                &k.access_key,
                &k.secret_access_key,
                k.region.as_deref(),
            );
            // Signed with the user's own keys: their bucket needs no operator grant.
            match super::outputs::own_bucket(tile_path) {
                Some(own) => sinks.also_allowing(own),
                None => sinks,
            }
        }
        None => base.clone(),
    }
}

/// One collection read of a tile: a request `input.data[]` entry matched with the bands
/// the evalscript asks of it.
#[derive(Debug, Clone)]
pub struct JobSource {
    /// The datasource id (`None` without data fusion and without an `id` in the request).
    pub id: Option<String>,
    pub collection: String,
    pub bands: Vec<String>,
    /// The entry's filter, with the units its bands are read in.
    pub filter: crate::data::Filter,
    /// Day number of the end of the entry's time range (0 without one).
    pub day: i64,
}

/// The read unit of a list of band units: DN only when every band asks for DN.
fn units_of(band_units: &[Option<String>]) -> crate::data::Units {
    if !band_units.is_empty() && band_units.iter().all(|u| u.as_deref() == Some("DN")) {
        crate::data::Units::Dn
    } else {
        crate::data::Units::Reflectance
    }
}

/// Matches the request's `input.data` entries with the script's datasources (pure).
fn job_sources(spec: &BatchSpec, setup: &Setup) -> Result<Vec<JobSource>, String> {
    let day = |d: &api::DatasourceSpec| {
        d.time_range
            .as_ref()
            .and_then(|(_, to)| crate::data::day_of(to))
            .unwrap_or(0)
    };
    let source = |d: &api::DatasourceSpec, bands: &[String], units: &[Option<String>]| JobSource {
        id: d.id.clone(),
        collection: d.collection.clone(),
        bands: bands.to_vec(),
        filter: crate::data::Filter {
            units: units_of(units),
            ..d.filter.clone()
        },
        day: day(d),
    };
    if !setup.is_fusion() {
        return match spec.datasources.as_slice() {
            [only] => Ok(vec![source(only, &setup.input_bands, &setup.band_units)]),
            [] => Err("processRequest.input.data is empty".into()),
            many => Err(format!(
                "processRequest.input.data lists {} collections (data fusion), so the \
                 evalscript's setup() must name each in input[].datasource; it names none",
                many.len()
            )),
        };
    }
    let known = || {
        spec.datasources
            .iter()
            .filter_map(|d| d.id.as_deref())
            .collect::<Vec<_>>()
            .join(", ")
    };
    setup
        .datasources
        .iter()
        .map(|wanted| {
            let d =
                spec.datasources
                    .iter()
                    .find(|d| d.id.as_deref() == Some(wanted.id.as_str()))
                    .ok_or_else(|| {
                        format!(
                        "evalscript setup() reads datasource '{}', but processRequest.input.data \
                         has no entry with that id (ids: {})",
                        wanted.id,
                        if known().is_empty() { "none".to_string() } else { known() }
                    )
                    })?;
            Ok(source(d, &wanted.bands, &wanted.band_units))
        })
        .collect()
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
/// The request's evalscript, with its collection's band names (V1 band globals).
pub(crate) fn compile_evalscript(spec: &api::BatchSpec) -> Result<Program, String> {
    let bands = crate::data::bands_of(&spec.collection).unwrap_or(&[]);
    Program::compile_for_collection(&spec.evalscript, bands).map_err(|e| format!("evalscript: {e}"))
}

pub fn load_job(store: &Store, id: &str, data: &crate::data::DataConfig) -> Result<Job, String> {
    let record = store
        .get_request(None, id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("request {id} no longer exists"))?;
    let spec = api::v2::validate_stored(&record.body).map_err(|e| e.to_string())?;
    let credentials = store.delivery_credentials(id).map_err(|e| e.to_string())?;
    let program = compile_evalscript(&spec)?;
    let setup = program.setup().clone();
    let sources = job_sources(&spec, &setup)?;
    for source in &sources {
        crate::data::check_bands(&source.collection, &source.bands, data).map_err(
            |e| match &source.id {
                Some(id) => format!("datasource '{id}': {e}"),
                None => e.to_string(),
            },
        )?;
    }
    let output_index =
        spec.responses
            .iter()
            .map(|r| {
                if r.encoder == crate::output::OutputFormat::Json {
                    return Ok(None);
                }
                setup
                    .outputs
                    .iter()
                    .position(|o| o.id == r.identifier)
                    .map(Some)
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
    let ranges: Vec<f64> = sources
        .iter()
        .map(|s| {
            let d = spec.datasources.iter().find(|d| d.id == s.id);
            let range_ms = d
                .and_then(|d| d.time_range.as_ref())
                .and_then(|(from, to)| {
                    Some((crate::data::epoch_ms(from)?, crate::data::epoch_ms(to)?))
                });
            accounting::days_in_range(range_ms)
        })
        .collect();
    let estimated_samples = accounting::estimate_samples_fused(
        setup.mosaicking == crate::evalscript::Mosaicking::Simple,
        &ranges,
    );
    Ok(Job {
        request_id: record.id,
        client_id: record.client_id,
        spec,
        setup,
        output_index,
        sources,
        estimated_samples,
        v2: api::v2::is_v2_body(&record.body),
        credentials,
        sinks: std::sync::OnceLock::new(),
        zarr_layout: std::sync::OnceLock::new(),
    })
}

/// The PU inputs of one tile of this job, with the estimated samples per pixel; a
/// processed tile replaces `samples` with `accounting::charged_samples`.
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
            .flatten()
            .any(|&i| job.setup.outputs[i].sample_type == SampleType::Float32),
        samples: job.estimated_samples,
    }
}

/// Runs the analysis of a request and stores its tiles and estimate.
///
/// `sinks` is where the outputs go: when §10.2 asks for existence checks, existing
/// outputs are looked up here with one listing, so a request whose files already exist
/// fails before it reserves any processing units.
pub fn analyse(
    store: &Store,
    id: &str,
    data: &crate::data::DataConfig,
    sinks: &crate::output::Sinks,
) -> Result<Job, String> {
    let job = load_job(store, id, data)?;
    let sinks = &job.sinks(sinks);
    // Tiles are built one at a time from compact grid cells and written in chunks as they
    // come: memory stays bounded by the cells (tens of bytes a tile), not the tiles.
    let tiles = || {
        crate::grid::tiles_iter(&job.spec.aoi, &job.spec.tiling, usize::MAX / 4)
            .map_err(|e| e.to_string())
    };
    let all = tiles()?;
    let tile_count = all.len();
    // §10.2: existing files are only checked for jobs under 5000 output files; bigger ones
    // must use a request-unique path, or overwrite without skipExisting.
    let files = tile_count as u64 * job.spec.responses.len() as u64;
    let check = crate::output::existence_check_needed(&job.spec.tile_path, &job.spec.output, files)
        .map_err(|e| e.to_string())?;
    if check {
        let outputs: Vec<Vec<String>> = tiles()?
            .map(|t| {
                job.spec
                    .responses
                    .iter()
                    .map(|r| {
                        crate::output::expand(
                            &job.spec.tile_path,
                            &crate::output::PathVars {
                                request_id: &job.request_id,
                                tile_name: &t.name,
                                tile_id: t.id,
                                output_id: &r.identifier,
                                format: r.encoder.extension(),
                            },
                        )
                    })
                    .collect()
            })
            .collect();
        // Analysis runs on a blocking thread: a small runtime of its own drives the listing.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("checking existing outputs: {e}"))?;
        runtime
            .block_on(sinks.preflight(&job.spec.tile_path, &job.spec.output, &outputs))
            .map_err(|e| e.to_string())?;
    }
    // v2's feature manifest and a Zarr store's layout need the whole list (bounded by the
    // request limits); v1 jobs never hold it.
    let listed: Vec<crate::grid::Tile> = if job.v2 || job.spec.zarr.is_some() {
        tiles()?.collect()
    } else {
        Vec::new()
    };
    let manifest = job
        .v2
        .then(|| super::artifacts::manifest_rows(&job, &listed));
    if job.spec.zarr.is_some() {
        // The store's metadata before any chunk: a failure here fails the analysis.
        super::artifacts::write_zarr_metadata(&job, sinks, &listed)?;
    }
    let inputs = cost_inputs(&job);
    let per_tile_estimate = accounting::tile_estimate(&inputs);
    let per_tile_cost = accounting::tile_cost(&inputs);
    let value_estimate = per_tile_estimate * tile_count as f64;
    let n = store
        .store_analysis(
            id,
            all.map(|t| NewTile {
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
    if let Some(rows) = manifest {
        // v2: the feature manifest goes to the bucket before the request counts as analysed.
        super::artifacts::upload_manifest(&job, sinks, &rows)?;
    }
    Ok(job)
}
