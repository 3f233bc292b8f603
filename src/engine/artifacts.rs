//! When the Batch v2 artifacts (`crate::artifacts`) are written and through which sinks:
//! the request JSON on create, the feature manifest at the end of the analysis, the
//! execution database at each processing transition and at most every
//! [`EXECUTION_DB_EVERY`] while tiles complete. All go through the request's own sinks
//! (its delivery credentials), to the root folder of its delivery URL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::analysis::Job;
use crate::artifacts::{self, ExecutionRow, ManifestRow};
use crate::grid::Tile;
use crate::output::Sinks;
use crate::store::Store;

/// How often, at most, the execution database is uploaded while tiles complete.
pub const EXECUTION_DB_EVERY: Duration = Duration::from_secs(10);

/// Writes `bytes` to `location` from a blocking thread (its own small runtime).
fn put_blocking(sinks: &Sinks, location: &str, bytes: Vec<u8>) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("writing {location}: {e}"))?;
    runtime
        .block_on(sinks.put(location, bytes))
        .map_err(|e| e.to_string())
}

/// On create: `request-<id>.json`, the stored body (no credentials), to the delivery root.
pub fn upload_request_json(
    sinks: &Sinks,
    template: &str,
    request_id: &str,
    body: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    let location = artifacts::location(template, &artifacts::request_json_name(request_id));
    let bytes = serde_json::to_vec_pretty(body).map_err(|e| e.to_string())?;
    put_blocking(sinks, &location, bytes)
}

/// The manifest rows of an analysed job: one per tile and output, with its expanded path.
pub fn manifest_rows(job: &Job, tiles: &[Tile]) -> Vec<ManifestRow> {
    let t = &job.spec.tiling;
    let res = t.resolution;
    let mut rows = Vec::with_capacity(tiles.len() * job.spec.responses.len());
    for tile in tiles {
        let width = ((tile.x_max - tile.x_min) / res).round() as i64 + 2 * t.buffer_x as i64;
        let height = ((tile.y_max - tile.y_min) / res).round() as i64 + 2 * t.buffer_y as i64;
        for r in &job.spec.responses {
            rows.push(ManifestRow {
                output_id: r.identifier.clone(),
                identifier: tile.name.clone(),
                // A Zarr output's path is its store (the hosted manifest says the same).
                path: match &job.spec.zarr {
                    Some(z) => z.root_of(&job.request_id),
                    None => crate::output::expand(
                        &job.spec.tile_path,
                        &crate::output::PathVars {
                            request_id: &job.request_id,
                            tile_name: &tile.name,
                            tile_id: tile.id,
                            output_id: &r.identifier,
                            format: r.encoder.extension(),
                        },
                    ),
                },
                width,
                height,
                epsg: tile.epsg,
                bounds: [tile.x_min, tile.y_min, tile.x_max, tile.y_max],
            });
        }
    }
    rows
}

/// After the analysis: `featureManifest-<id>.gpkg`. An error fails the analysis (the
/// bucket is not writable, so processing could not deliver either).
pub fn upload_manifest(job: &Job, sinks: &Sinks, rows: &[ManifestRow]) -> Result<(), String> {
    let bytes = artifacts::feature_manifest(rows).map_err(|e| e.to_string())?;
    let location = artifacts::location(
        &job.spec.tile_path,
        &artifacts::feature_manifest_name(&job.request_id),
    );
    put_blocking(sinks, &location, bytes)
        .map_err(|e| format!("cannot write the feature manifest: {e}"))
}

/// Uploads the execution database of a request, in order: a later snapshot never lands
/// before an earlier one.
#[derive(Default)]
pub struct ExecutionPublisher {
    last: Option<Instant>,
    order: Arc<tokio::sync::Mutex<()>>,
}

impl ExecutionPublisher {
    /// Snapshots the request's tiles now and uploads them in the background; unless
    /// `force`, only when [`EXECUTION_DB_EVERY`] has passed since the last upload. Must be
    /// called on the actor's (actix) thread.
    pub fn publish(&mut self, store: &Store, job: &Job, base: Option<&Sinks>, force: bool) {
        let Some(base) = base.filter(|_| job.v2) else {
            return;
        };
        if !force && self.last.is_some_and(|t| t.elapsed() < EXECUTION_DB_EVERY) {
            return;
        }
        let rows: Vec<ExecutionRow> = match store.list_tiles(
            &job.request_id,
            None,
            0,
            u64::MAX >> 2,
        ) {
            Ok(tiles) => tiles
                .into_iter()
                .map(|t| ExecutionRow {
                    id: t.id,
                    name: t.name,
                    status: t.status,
                    error: t.error,
                })
                .collect(),
            Err(e) => {
                tracing::warn!(request = %job.request_id, "execution database not written: {e}");
                return;
            }
        };
        if rows.is_empty() {
            return;
        }
        self.last = Some(Instant::now());
        let sinks = job.sinks(base);
        let location = artifacts::location(
            &job.spec.tile_path,
            &artifacts::execution_db_name(&job.request_id),
        );
        let order = self.order.clone();
        let request = job.request_id.clone();
        actix::spawn(async move {
            let _turn = order.lock().await;
            let built = tokio::task::spawn_blocking(move || artifacts::execution_db(&rows)).await;
            let result = match built {
                Ok(Ok(bytes)) => sinks.put(&location, bytes).await.map_err(|e| e.to_string()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = result {
                tracing::warn!(request = %request, "execution database not written: {e}");
            }
        });
    }
}

/// The Zarr arrays of a job: one per response, each from a one-band evalscript output.
fn zarr_arrays(job: &Job) -> Result<Vec<crate::output::zarr::ZarrArray>, String> {
    let Some(zarr) = &job.spec.zarr else {
        return Ok(Vec::new());
    };
    job.spec
        .responses
        .iter()
        .zip(&job.output_index)
        .map(|(r, index)| {
            let Some(i) = index else {
                return Err(
                    "a Zarr output cannot hold the userdata (application/json) response".into(),
                );
            };
            let out = &job.setup.outputs[*i];
            if out.bands != 1 {
                return Err(format!(
                    "a Zarr output takes one band per output; the evalscript's output '{}' has {}",
                    out.id, out.bands
                ));
            }
            let overrides = zarr
                .array_overrides
                .as_ref()
                .and_then(|o| o.get(&r.identifier))
                .and_then(serde_json::Value::as_object);
            crate::output::zarr::array_spec(
                &r.identifier,
                out.sample_type,
                out.nodata,
                zarr.array_parameters.as_ref(),
                overrides,
            )
            .map_err(|e| e.to_string())
        })
        .collect()
}

/// After the analysis of a Zarr output: the group, array and coordinate metadata.
pub fn write_zarr_metadata(job: &Job, sinks: &Sinks, tiles: &[Tile]) -> Result<(), String> {
    let Some(zarr) = &job.spec.zarr else {
        return Ok(());
    };
    let layout = crate::output::zarr::ZarrLayout::from_tiles(
        tiles
            .iter()
            .map(|t| (t.epsg, [t.x_min, t.y_min, t.x_max, t.y_max])),
        job.spec.tiling.resolution,
    )
    .map_err(|e| e.to_string())?;
    let arrays = zarr_arrays(job)?;
    let root = zarr.root_of(&job.request_id);
    for (key, bytes) in
        crate::output::zarr::store_metadata(&layout, &arrays, zarr.custom_attributes.as_ref())
    {
        put_blocking(sinks, &format!("{root}/{key}"), bytes)
            .map_err(|e| format!("cannot write the Zarr store: {e}"))?;
    }
    Ok(())
}

/// A tile's chunk in each array of a Zarr output, as `(location, bytes)`.
pub fn zarr_chunks(
    job: &Job,
    store: &Store,
    tile: &crate::api::TileRecord,
    outputs: &[crate::raster::SampleBuffer],
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let Some(zarr) = &job.spec.zarr else {
        return Ok(Vec::new());
    };
    let layout = job.zarr_layout(store)?;
    let (row, col) = layout
        .chunk_of(tile.x_min, tile.y_max)
        .map_err(|e| e.to_string())?;
    let pixels = layout.tile_width * layout.tile_height;
    let root = zarr.root_of(&job.request_id);
    job.spec
        .responses
        .iter()
        .zip(&job.output_index)
        .map(|(r, index)| {
            let i = index.ok_or("a Zarr output cannot hold the userdata response")?;
            let bytes = crate::output::zarr::encode_chunk(&outputs[i], pixels)
                .map_err(|e| e.to_string())?;
            Ok((
                format!(
                    "{root}/{}",
                    crate::output::zarr::chunk_key(&r.identifier, row, col)
                ),
                bytes,
            ))
        })
        .collect()
}
