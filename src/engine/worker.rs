//! Tile workers: each runs on its own thread (a `SyncArbiter` slot) with its own boa
//! runtime and store connection, and processes one tile at a time:
//! read -> evaluate -> encode -> write, then reports cost or failure.
//!
//! A panic inside the pipeline is caught here: the worker throws away its runtime (a
//! restart in all but thread identity), and the tile counts a failed attempt, so it is
//! retried like any other failure.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::analysis::{self, Job};
use super::lifecycle::{self, TileEvent, TileStatus};
use super::stats::{Stats, TileTimings};
use super::EngineConfig;
use crate::api::TileRecord;
use crate::evalscript::{
    CancelToken, EvalscriptError, FusionSource, Mosaicking, Program, SceneEvaluation, SceneInput,
};
use crate::output::{ExistingAction, PathVars, Sinks};
use crate::raster::{Georef, Raster, SampleBuffer};
use crate::store::Store;

/// Process one tile of a job.
#[derive(Message)]
#[rtype(result = "TileOutcome")]
pub struct ProcessTile {
    pub job: Arc<Job>,
    pub tile: TileRecord,
    /// The request's owner: workers are shared round-robin between clients (`pool`).
    pub client: String,
    /// Set when the request is cancelled: ends the tile's evaluation at its next tick.
    pub cancel: CancelToken,
}

/// The attempt number this was, and the PU cost or the failure text.
#[derive(Debug, MessageResponse)]
pub struct TileOutcome {
    pub attempts: u32,
    pub result: Result<f64, String>,
}

pub struct TileWorker {
    config: Arc<EngineConfig>,
    stats: Arc<Stats>,
    store: Option<Store>,
    /// `Err` when the S3 settings in the environment are invalid: every tile fails with it.
    sinks: Result<Sinks, String>,
    /// The compiled evalscript of the last job, reused while its tiles keep coming.
    program: Option<(String, Program)>,
    runtime: Option<tokio::runtime::Runtime>,
    /// Stage timings of the last tile processed (sent back by a worker process).
    pub(super) last_timings: TileTimings,
}

impl TileWorker {
    pub fn new(config: Arc<EngineConfig>, stats: Arc<Stats>) -> Self {
        let store = Store::open(&config.db_path)
            .map_err(|e| tracing::error!("worker cannot open the store: {e}"))
            .ok();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| tracing::error!("worker cannot build its I/O runtime: {e}"))
            .ok();
        TileWorker {
            sinks: Sinks::from_env(config.data_dir.clone()).map_err(|e| e.to_string()),
            config,
            stats,
            store,
            program: None,
            runtime,
            last_timings: TileTimings::default(),
        }
    }

    fn program(&mut self, job: &Job) -> Result<&mut Program, String> {
        let fresh = !matches!(&self.program, Some((id, _)) if *id == job.request_id);
        if fresh {
            let mut p = super::analysis::compile_evalscript(&job.spec)?;
            p.set_time_budget(self.config.tile_time_budget);
            self.program = Some((job.request_id.clone(), p));
        }
        match &mut self.program {
            Some((_, p)) => Ok(p),
            None => Err("no evalscript runtime".into()),
        }
    }

    /// The pipeline for one tile; returns its PU cost.
    pub(super) fn process(
        &mut self,
        job: &Job,
        tile: &TileRecord,
        attempt: u32,
    ) -> Result<f64, String> {
        let started = Instant::now();
        let mut timings = TileTimings::default();
        if self.config.inject_panic_once.as_deref() == Some(tile.name.as_str()) && attempt == 1 {
            panic!("injected panic for tile {}", tile.name);
        }
        // Confined to the owner's scope, re-read per tile so a revoked grant holds.
        let store = self
            .store
            .as_ref()
            .ok_or("the worker has no store connection")?;
        let confined = self
            .config
            .outputs
            .sinks_for(self.sinks.clone()?, store, &job.client_id)?;
        let sinks = job.sinks(&confined);
        let paths: Vec<String> = job
            .spec
            .responses
            .iter()
            .map(|response| {
                crate::output::expand(
                    &job.spec.tile_path,
                    &PathVars {
                        request_id: &job.request_id,
                        tile_name: &tile.name,
                        tile_id: tile.id,
                        output_id: &response.identifier,
                        format: response.encoder.extension(),
                    },
                )
            })
            .collect();
        let o = &job.spec.output;
        if crate::output::existence_check_needed(&job.spec.tile_path, o, 0).unwrap_or(true) {
            let runtime = self.runtime.as_ref().ok_or("no I/O runtime")?;
            let mut existing = Vec::new();
            for path in &paths {
                if runtime
                    .block_on(sinks.exists(path))
                    .map_err(|e| e.to_string())?
                {
                    existing.push(path.clone());
                }
            }
            match crate::output::decide_existing(
                o.overwrite,
                o.skip_existing,
                paths.len(),
                &existing,
            ) {
                ExistingAction::Write => {}
                // Nothing processed, nothing charged.
                ExistingAction::Skip => return Ok(0.0),
                ExistingAction::Fail(message) => return Err(message),
            }
        }
        let t = &job.spec.tiling;
        let res = t.resolution;
        let georef = Georef {
            epsg: tile.epsg,
            x_min: tile.x_min - t.buffer_x as f64 * res,
            y_max: tile.y_max + t.buffer_y as f64 * res,
            res_x: res,
            res_y: res,
        };
        let width = ((tile.x_max - tile.x_min) / res).round() as usize + 2 * t.buffer_x as usize;
        let height = ((tile.y_max - tile.y_min) / res).round() as usize + 2 * t.buffer_y as usize;

        let clock = Instant::now();
        let len = width * height;
        let simple = job.setup.mosaicking == Mosaicking::Simple;
        // One read per datasource (one without data fusion), each with its own filter:
        // SIMPLE gives one mosaicked block, ORBIT/TILE one block per scene.
        let mut read: Vec<Vec<crate::data::Scene>> = Vec::with_capacity(job.sources.len());
        for source in &job.sources {
            let request = crate::data::ReadRequest {
                collection: &source.collection,
                bands: &source.bands,
                georef,
                width,
                height,
                day: source.day,
            };
            let scenes = if simple {
                let planes = crate::data::read_simple(&request, &source.filter, &self.config.data)
                    .map_err(|e| e.to_string())?;
                vec![crate::data::Scene {
                    id: String::new(),
                    datetime: String::new(),
                    cloud_cover: 0.0,
                    planes,
                    mask: Vec::new(),
                }]
            } else {
                crate::data::read_scenes(&request, &source.filter, &self.config.data)
                    .map_err(|e| e.to_string())?
            };
            read.push(scenes);
        }
        timings.read = clock.elapsed();
        let wants_userdata = job.output_index.iter().any(Option::is_none);
        let clock = Instant::now();
        let program = self.program(job)?;
        let evaluation = if job.setup.is_fusion() {
            let sources: Vec<FusionSource> = job
                .sources
                .iter()
                .zip(&read)
                .map(|(source, scenes)| FusionSource {
                    id: source.id.clone().unwrap_or_default(),
                    scenes: scene_inputs(scenes),
                })
                .collect();
            program.evaluate_fusion(&sources, len)
        } else if simple && !wants_userdata {
            // The hot path (possibly the compiled tier): no scene metadata, no userData.
            let refs: Vec<&[f32]> = read
                .first()
                .and_then(|scenes| scenes.first())
                .map(|scene| scene.planes.iter().map(Vec::as_slice).collect())
                .unwrap_or_default();
            program.evaluate(&refs, len).map(|outputs| SceneEvaluation {
                outputs,
                bands: job.setup.outputs.iter().map(|o| o.bands).collect(),
                user_data: None,
                scenes_used: vec![1],
            })
        } else {
            let scenes = read.first().map(|s| scene_inputs(s)).unwrap_or_default();
            program.evaluate_scenes(&scenes, len)
        };
        let evaluation = match evaluation {
            Ok(evaluation) => evaluation,
            Err(e) => {
                if matches!(e, EvalscriptError::Memory { .. }) {
                    // Its heap may still hold what the script built: start afresh.
                    self.program = None;
                }
                return Err(format!("evalscript: {e}"));
            }
        };
        timings.evaluate = clock.elapsed();
        let SceneEvaluation {
            mut outputs,
            bands: band_counts,
            user_data,
            scenes_used,
        } = evaluation;
        if self
            .program
            .as_ref()
            .is_some_and(|(_, p)| p.writes_globals())
        {
            // Each worker has its own runtime, so such a script sees pixels in an order
            // that depends on how tiles were spread over workers.
            tracing::warn!(
                "evalscript writes globals in evaluatePixel; results depend on evaluation order"
            );
        }

        let clock = Instant::now();

        let mut files = Vec::with_capacity(job.spec.responses.len());
        if job.spec.zarr.is_some() {
            // Batch v2 Zarr output: this tile's chunk of each array, instead of a file.
            let store = self.store.as_ref().ok_or("no store connection")?;
            files = super::artifacts::zarr_chunks(job, store, tile, &outputs)?;
        }
        let raster_paths = if job.spec.zarr.is_some() {
            Vec::new()
        } else {
            paths
        };
        for ((response, &index), path) in job
            .spec
            .responses
            .iter()
            .zip(&job.output_index)
            .zip(raster_paths)
        {
            let Some(index) = index else {
                // The `userdata` response: `outputMetadata.userData` (null if never set).
                let value = user_data.clone().unwrap_or(serde_json::Value::Null);
                let bytes = crate::output::encode_userdata(&value).map_err(|e| e.to_string())?;
                files.push((path, bytes));
                continue;
            };
            let spec = &job.setup.outputs[index];
            let raster = Raster {
                width,
                height,
                // updateOutput may change an ORBIT/TILE script's band counts.
                bands: band_counts[index],
                // Each output is encoded once: move it out instead of copying a tile's worth.
                data: std::mem::replace(&mut outputs[index], SampleBuffer::U8(Vec::new())),
            };
            let bytes = response
                .encoder
                .encode(&raster, &georef, spec.nodata)
                .map_err(|e| e.to_string())?;
            files.push((path, bytes));
        }
        timings.encode = clock.elapsed();
        let clock = Instant::now();
        let runtime = self.runtime.as_ref().ok_or("no I/O runtime")?;
        for (path, bytes) in files {
            runtime
                .block_on(sinks.put(&path, bytes))
                .map_err(|e| e.to_string())?;
        }
        timings.write = clock.elapsed();
        timings.total = started.elapsed();
        self.stats.record(&job.request_id, &timings);
        self.last_timings = timings;
        let samples = crate::accounting::charged_samples(simple, &scenes_used);
        Ok(crate::accounting::tile_cost(
            &crate::accounting::TileCostInputs {
                samples,
                ..analysis::cost_inputs(job)
            },
        ))
    }
}

/// The evaluator's view of scenes read from a collection (planes borrowed).
fn scene_inputs(scenes: &[crate::data::Scene]) -> Vec<SceneInput<'_>> {
    scenes
        .iter()
        .map(|s| SceneInput {
            bands: s.planes.iter().map(|p| p.as_slice()).collect(),
            date_ms: crate::data::epoch_ms(&s.datetime).unwrap_or(0),
            tile_id: (!s.id.is_empty()).then(|| s.id.clone()),
            cloud_coverage: Some(s.cloud_cover),
            ..SceneInput::default()
        })
        .collect()
}

/// Marks the tile PROCESSING (one more attempt) in `store`; the attempt number, or the
/// outcome to report when that fails.
pub(super) fn begin(store: Option<&Store>, msg: &ProcessTile) -> Result<u32, TileOutcome> {
    let (job, tile) = (&msg.job, &msg.tile);
    if msg.cancel.is_cancelled() {
        return Err(TileOutcome {
            attempts: tile.attempts,
            result: Err("the request was cancelled before this tile started".into()),
        });
    }
    match lifecycle::tile_on_event(TileStatus::Scheduled, tile.attempts, TileEvent::Begin) {
        Ok((status, attempts)) => {
            if let Some(store) = store {
                if let Err(e) =
                    store.set_tile_status(&job.request_id, tile.id, status, attempts, None)
                {
                    return Err(TileOutcome {
                        attempts,
                        result: Err(format!("store: {e}")),
                    });
                }
            }
            Ok(attempts)
        }
        Err(e) => Err(TileOutcome {
            attempts: tile.attempts,
            result: Err(e.to_string()),
        }),
    }
}

impl TileWorker {
    /// Runs one tile in this thread: PROCESSING, then the pipeline with a panic caught.
    pub fn run(&mut self, msg: &ProcessTile) -> TileOutcome {
        let attempts = match begin(self.store.as_ref(), msg) {
            Ok(attempts) => attempts,
            Err(outcome) => return outcome,
        };
        let _cancel = msg.cancel.enter();
        let result = self.process_guarded(&msg.job, &msg.tile, attempts);
        TileOutcome { attempts, result }
    }

    /// The pipeline with a panic turned into a failed attempt (and a fresh runtime).
    pub(super) fn process_guarded(
        &mut self,
        job: &Job,
        tile: &TileRecord,
        attempts: u32,
    ) -> Result<f64, String> {
        let _span =
            tracing::info_span!("tile", request = %job.request_id, tile = %tile.name, attempts)
                .entered();
        // Names the tile in the crash note if its script hits the hard memory cap.
        let _label = crate::evalscript::CountingAlloc::set_task_label(&format!(
            "tile {} {}",
            job.request_id, tile.id
        ));
        match catch_unwind(AssertUnwindSafe(|| self.process(job, tile, attempts))) {
            Ok(r) => r,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!("worker panicked, restarting its runtime: {what}");
                // Whatever the panic left half-done in the runtime is dropped with it.
                self.program = None;
                Err(format!("worker crashed: {what}"))
            }
        }
    }
}
