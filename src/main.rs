//! The `tessera` command: the daemon, one-shot runs, and client management.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use tessera::engine::lifecycle::{Event, Status};
use tessera::engine::{Engine, EngineConfig, OutputPolicy};
use tessera::http;
use tessera::store::Store;

/// Counts each thread's heap bytes so an evalscript's runaway allocation fails its tile
/// instead of exhausting memory (see `evalscript::memory`).
#[global_allocator]
static ALLOCATOR: tessera::evalscript::CountingAlloc = tessera::evalscript::CountingAlloc;

mod bench;
mod limit_args;
mod supervise;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Self-hosted Sentinel Hub Batch Processing API"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Args, Clone)]
struct EngineArgs {
    /// The SQLite database file.
    #[arg(long, default_value = "tessera.db")]
    db: PathBuf,
    /// Base folder for relative output paths (and the local stand-in for s3:// buckets).
    #[arg(long, default_value = "tessera-data")]
    data: PathBuf,
    /// Tile workers; defaults to the number of cores.
    #[arg(long)]
    workers: Option<usize>,
    #[command(flatten)]
    limits: limit_args::LimitArgs,
    /// Wall-clock budget of one tile's evaluation (e.g. 10m, 30s).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    tile_time_budget: Duration,
    /// Wall-clock budget of an evalscript's top-level code plus setup().
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    setup_time_budget: Duration,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the Batch API daemon.
    Serve {
        #[command(flatten)]
        engine: EngineArgs,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// How often stale requests are looked for (e.g. 1h, 30s).
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        janitor_interval: Duration,
        /// Delete FAILED requests after this long.
        #[arg(long, default_value = "30days", value_parser = humantime::parse_duration)]
        delete_failed_after: Duration,
        /// Delete CREATED / ANALYSIS_DONE requests never started after this long.
        #[arg(long, default_value = "30days", value_parser = humantime::parse_duration)]
        delete_unstarted_after: Duration,
        /// Delete DONE / PARTIAL requests after this long (outputs are kept).
        #[arg(long, default_value = "90days", value_parser = humantime::parse_duration)]
        delete_finished_after: Duration,
        /// How long a request stopped with the v2 STOP refuses START (the hosted service
        /// waits 30 minutes: 30m).
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        restart_delay: Duration,
        /// Run the daemon in this process, without the supervisor that restarts it when
        /// it dies (e.g. an evalscript hitting the hard memory cap).
        #[arg(long)]
        no_supervise: bool,
        /// Internal: this process is the daemon started by the supervisor.
        #[arg(long, hide = true)]
        child: bool,
        /// Let every client write outputs under this absolute path (or file:///path)
        /// besides its own folder <data>/clients/<clientId>/; repeatable. Per client:
        /// `tessera clients grant`.
        #[arg(long, value_name = "PATH")]
        allow_output_prefix: Vec<String>,
        /// Run tiles on threads of the daemon instead of `tessera worker` processes (a
        /// script that kills its process then takes the daemon and every tile in flight).
        #[arg(long)]
        in_process_workers: bool,
    },
    /// Internal: a tile worker process of `tessera serve` (tile jobs on stdin).
    #[command(hide = true)]
    Worker {
        #[command(flatten)]
        engine: EngineArgs,
        /// The daemon's --allow-output-prefix values, passed on.
        #[arg(long, value_name = "PATH")]
        allow_output_prefix: Vec<String>,
        /// The daemon's outputs are not confined (an embedder's choice).
        #[arg(long)]
        unconfined_outputs: bool,
    },
    /// Run one batch request (a create body as JSON) in-process, with a progress bar.
    Run {
        /// The request body, as for POST /api/v1/batch/process.
        request: PathBuf,
        /// Use this evalscript file instead of the body's `processRequest.evalscript`:
        /// JavaScript, or a precompiled WebAssembly module (`.wasm`).
        #[arg(long)]
        evalscript: Option<PathBuf>,
        /// Run the tiles in `tessera worker` processes, as `tessera serve` does (to measure
        /// the process boundary; threads are the default here).
        #[arg(long)]
        processes: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Measure evalscript throughput or per-tile engine overhead.
    Bench {
        #[command(subcommand)]
        command: BenchCmd,
    },
    /// Check an evalscript: its format, setup(), and which tier will run it; with
    /// --pixels, run it on given samples and print the outputs as JSON.
    Eval {
        /// The evalscript file: JavaScript, or a precompiled WebAssembly module (`.wasm`);
        /// or a folder: the tier of each `.js`/`.txt` script in it, with totals.
        script: PathBuf,
        /// Say which tier runs evaluatePixel and, for boa, why.
        #[arg(long)]
        explain: bool,
        /// A JSON file {"samples": [one entry per pixel, shaped as evaluatePixel receives
        /// it], "scenes": ...}: run evaluatePixel on each (always in boa) and print
        /// {"outputs": {"<id>": [[band values] per pixel]}, "userData": ...}.
        #[arg(long, value_name = "PIXELS.json")]
        pixels: Option<PathBuf>,
        /// With --pixels: print the numbers evaluatePixel returned instead of the values
        /// formatted by each output's sample type.
        #[arg(long, requires = "pixels")]
        raw: bool,
        /// With --pixels: wall-clock budget of the evaluation (top-level code and setup()
        /// have their own, 5 s), as a tile's in `tessera serve`.
        #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
        time_budget: Duration,
        /// The collection the script reads (e.g. sentinel-2-l1c): its band names are a V1
        /// script's band globals. Without it, they are the known band names the script
        /// mentions and any global its probe pixel finds undefined.
        #[arg(long)]
        collection: Option<String>,
    },
    /// Tiling grids: list the tiles of an area, to check them in a GIS.
    Grid {
        #[command(subcommand)]
        command: GridCmd,
    },
    /// Manage OAuth clients.
    Clients {
        #[command(subcommand)]
        command: ClientsCmd,
    },
    /// BYOC collections: index your own COGs, then request them as "type": "byoc-<id>".
    Collection {
        #[command(subcommand)]
        command: CollectionCmd,
    },
}

#[derive(Subcommand)]
enum CollectionCmd {
    /// Index COG tiles into a collection (created on first use): each file's header gives
    /// the tile's footprint; files matching the template with different bands form a tile.
    Ingest {
        #[arg(long, default_value = "tessera.db")]
        db: PathBuf,
        /// Collection id (requests name it as "byoc-<id>").
        #[arg(long)]
        id: String,
        /// Path or URL with (BAND) where the band name goes and '*' for the varying part,
        /// e.g. '/data/col/*/(BAND).tif'.
        #[arg(long)]
        template: String,
        /// Sensing time of every tile (RFC 3339); default: the date in each tile's path.
        #[arg(long)]
        sensing_time: Option<String>,
        /// Cloud cover of every tile, in percent.
        #[arg(long)]
        cloud_cover: Option<f64>,
        /// Files, URLs or quoted local globs; none: scan the folders the template names.
        files: Vec<String>,
    },
    /// List collections with their tile count, bands and template.
    List {
        #[arg(long, default_value = "tessera.db")]
        db: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Evaluate a script over blocks of sample pixels and report pixels per second.
    Eval {
        /// The evalscript file.
        script: PathBuf,
        /// Pixels per block (one tile at 10 m with a 50 px buffer is 1,210,000).
        #[arg(long, default_value_t = 1_000_000)]
        pixels: usize,
        /// Blocks to evaluate; the first one is a warm-up and is not counted.
        #[arg(long, default_value_t = 4)]
        blocks: usize,
    },
    /// One evalscript through every tier on one core: boa, the compiled (WebAssembly)
    /// tier or why it does not apply, node calling evaluatePixel per pixel (skipped
    /// without node), and a native Rust NDVI loop, in pixels per second with ratios.
    Evalscript {
        /// The evalscript file.
        script: PathBuf,
        /// Pixels per timed run (boa is timed on at most 65,536 of them).
        #[arg(long, default_value_t = 1 << 20)]
        pixels: usize,
    },
    /// Run a request of about N grid-1 tiles with a trivial evalscript through the
    /// embedded engine and report seconds per tile, and the part outside the evalscript.
    Tiles {
        /// Roughly how many tiles (a square area of that many 10 km cells).
        #[arg(long, default_value_t = 100)]
        tiles: u32,
        /// Grid-1 resolution: 10 (1000x1000 px tiles) or 20 (500x500).
        #[arg(long, default_value_t = 20.0)]
        resolution: f64,
        #[arg(long)]
        workers: Option<usize>,
        /// Run the tiles in `tessera worker` processes, as `tessera serve` does.
        #[arg(long)]
        processes: bool,
    },
}

#[derive(Subcommand)]
enum GridCmd {
    /// Write the tiles of a grid that an area touches as GeoJSON (stdout or --out).
    Tiles {
        /// Tiling grid id (0: UTM 20 km, 1: UTM 10 km, 2: UTM 100 km, 3: WGS84 1°).
        #[arg(long)]
        grid: i64,
        /// Output resolution, in the grid's unit.
        #[arg(long)]
        resolution: f64,
        /// GeoJSON file with the area (Polygon, MultiPolygon, Feature or FeatureCollection).
        #[arg(long)]
        aoi: PathBuf,
        #[arg(long, default_value_t = 0)]
        buffer_x: i32,
        #[arg(long, default_value_t = 0)]
        buffer_y: i32,
        /// Output file; stdout when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ClientsCmd {
    /// Create a client and print its id and secret as JSON (the secret is shown only once).
    Add {
        #[arg(long, default_value = "tessera.db")]
        db: PathBuf,
        #[arg(long, default_value = "client")]
        name: String,
    },
    /// List clients (ids, names and output grants; secrets are stored hashed).
    List {
        #[arg(long, default_value = "tessera.db")]
        db: PathBuf,
    },
    /// Remove a client: its secret and every token stop working at once (a running daemon
    /// notices within a second). Its requests stay.
    Remove {
        #[arg(long, default_value = "tessera.db")]
        db: PathBuf,
        id: String,
    },
    /// Revoke every token issued to a client so far; it can fetch new ones with its secret.
    RevokeTokens {
        #[arg(long, default_value = "tessera.db")]
        db: PathBuf,
        id: String,
    },
    /// Let a client write outputs to a bucket or key prefix (s3://bucket[/prefix],
    /// gs://..., az://...) or under a local absolute path (/path, file:///path).
    Grant(GrantArgs),
    /// Take a grant back; requests already created stop writing there from their next tile.
    Revoke(GrantArgs),
}

#[derive(clap::Args)]
struct GrantArgs {
    #[arg(long, default_value = "tessera.db")]
    db: PathBuf,
    /// The client id (`tessera clients list`).
    client: String,
    location: String,
}

impl GrantArgs {
    /// The store, and the canonical spelling of the grant for an existing client (so
    /// grant and revoke agree whatever the operator typed: `s3://b/p/`, `file:///srv/x`).
    fn open(&self) -> Result<(Store, String)> {
        let store = Store::open(&self.db)?;
        if !store
            .list_clients()?
            .iter()
            .any(|(id, _, _)| *id == self.client)
        {
            bail!(
                "no client {}; `tessera clients list` shows them",
                self.client
            );
        }
        let grant =
            tessera::output::confine::parse_grant(&self.location).map_err(anyhow::Error::msg)?;
        Ok((store, grant.to_string()))
    }
}

fn engine_config(args: &EngineArgs) -> Result<EngineConfig> {
    let mut c = EngineConfig {
        db_path: args.db.clone(),
        data_dir: args.data.clone(),
        // TESSERA_STAC_API_URL / TESSERA_STAC_CATALOG_URL, S3 and retry settings.
        data: tessera::data::DataConfig::from_env()?,
        ..EngineConfig::default()
    };
    if let Some(w) = args.workers {
        c.workers = w.max(1);
    }
    args.limits.apply(&mut c.limits);
    c.tile_time_budget = args.tile_time_budget;
    c.setup_time_budget = args.setup_time_budget;
    Ok(c)
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Cmd::Serve {
            engine,
            listen,
            janitor_interval,
            delete_failed_after,
            delete_unstarted_after,
            delete_finished_after,
            restart_delay,
            no_supervise,
            child,
            allow_output_prefix,
            in_process_workers,
        } => {
            if !no_supervise && !child {
                std::process::exit(supervise::run()?);
            }
            let mut config = engine_config(&engine)?;
            config.outputs =
                OutputPolicy::allowing(&allow_output_prefix).map_err(anyhow::Error::msg)?;
            if !in_process_workers {
                config.worker_processes =
                    Some(std::env::current_exe().context("locating the tessera executable")?);
            }
            config.janitor_interval = janitor_interval;
            config.stale.failed = delete_failed_after;
            config.stale.unstarted = delete_unstarted_after;
            config.stale.finished = delete_finished_after;
            config.restart_delay = restart_delay;
            serve(config, listen)
        }
        Cmd::Run {
            request,
            evalscript,
            processes,
            engine,
        } => {
            let mut config = engine_config(&engine)?;
            if processes {
                // `tessera run` is the operator's own job: its workers are unconfined too.
                config.worker_processes =
                    Some(std::env::current_exe().context("locating the tessera executable")?);
            }
            run(config, &request, evalscript.as_deref())
        }
        Cmd::Clients { command } => clients(command),
        Cmd::Collection { command } => collection(command),
        Cmd::Grid { command } => grid(command),
        Cmd::Eval {
            script,
            explain,
            pixels,
            raw,
            time_budget,
            collection,
        } => eval(
            &script,
            explain,
            pixels.as_deref(),
            raw,
            time_budget,
            collection.as_deref(),
        ),
        Cmd::Bench { command } => bench::run(command),
        Cmd::Worker {
            engine,
            allow_output_prefix,
            unconfined_outputs,
        } => {
            // The same memory limits as the daemon: the hard cap aborts this process only.
            tessera::evalscript::CountingAlloc::configure_from_env().map_err(anyhow::Error::msg)?;
            let mut config = engine_config(&engine)?;
            // The same output confinement as the daemon: the worker writes the files.
            config.outputs = if unconfined_outputs {
                OutputPolicy::unconfined()
            } else {
                OutputPolicy::allowing(&allow_output_prefix).map_err(anyhow::Error::msg)?
            };
            tessera::engine::serve_worker_process(config).map_err(anyhow::Error::msg)
        }
    }
}

fn serve(config: EngineConfig, listen: SocketAddr) -> Result<()> {
    let workers = config.workers;
    // Evalscript memory: soft limit (fails the tile) and hard cap (aborts the process,
    // which the supervisor restarts; the crash note names the reason for the tile).
    let (soft, hard) =
        tessera::evalscript::CountingAlloc::configure_from_env().map_err(anyhow::Error::msg)?;
    tracing::info!(
        soft_mib = soft >> 20,
        hard_mib = hard >> 20,
        "evalscript memory limits"
    );
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    if let Some((reason, label)) =
        tessera::evalscript::CountingAlloc::arm_crash_note(&config.data_dir)
    {
        tracing::warn!(%label, "the previous run aborted: {reason}");
    }
    let engine = Engine::start(config).context("starting the engine")?;
    if engine.store().list_clients()?.is_empty() {
        let (id, secret) = http::auth::add_client(engine.store(), "first client")?;
        println!("tessera: first client created: client_id={id} client_secret={secret}");
        println!("tessera: keep the secret; it is stored hashed and cannot be shown again");
    }
    actix_web::rt::System::new()
        .block_on(http::serve(engine, listen, workers.clamp(1, 4)))
        .context("serving HTTP")
}

fn clients(command: ClientsCmd) -> Result<()> {
    match command {
        ClientsCmd::Add { db, name } => {
            let store = Store::open(&db)?;
            let (id, secret) = http::auth::add_client(&store, &name)?;
            println!(
                "{}",
                serde_json::json!({"client_id": id, "client_secret": secret})
            );
        }
        ClientsCmd::List { db } => {
            let store = Store::open(&db)?;
            for (id, name, created) in store.list_clients()? {
                println!("{id}\t{name}\t{created}");
                for grant in store.output_grants(&id)? {
                    println!("\tgrant\t{grant}");
                }
            }
        }
        ClientsCmd::Remove { db, id } => {
            if !Store::open(&db)?.remove_client(&id)? {
                bail!("no client {id}");
            }
            println!("removed client {id}");
        }
        ClientsCmd::RevokeTokens { db, id } => {
            if !Store::open(&db)?.revoke_client_tokens(&id)? {
                bail!("no client {id}");
            }
            println!("revoked the tokens of client {id}");
        }
        ClientsCmd::Grant(args) => {
            let (store, grant) = args.open()?;
            if store.grant_output(&args.client, &grant)? {
                println!("granted {grant} to {}", args.client);
            } else {
                println!("{} already had {grant}", args.client);
            }
        }
        ClientsCmd::Revoke(args) => {
            let (store, grant) = args.open()?;
            if !store.revoke_output(&args.client, &grant)? {
                bail!(
                    "{} has no grant {grant}; `tessera clients list` shows them",
                    args.client
                );
            }
            println!("revoked {grant} from {}", args.client);
        }
    }
    Ok(())
}

fn collection(command: CollectionCmd) -> Result<()> {
    use tessera::data::byoc;
    match command {
        CollectionCmd::Ingest {
            db,
            id,
            template,
            sensing_time,
            cloud_cover,
            files,
        } => {
            let store = Store::open(&db)?;
            let cwd = std::env::current_dir()?.display().to_string();
            let opts = byoc::IngestOptions {
                id,
                template,
                inputs: files,
                sensing_time,
                cloud_cover,
                cwd,
            };
            let report = byoc::ingest(&store, &opts)?;
            for t in &report.tiles {
                println!(
                    "{}\t{}\tEPSG:{}\t{}",
                    t.path,
                    t.sensing_time,
                    t.epsg,
                    t.bands.join(",")
                );
            }
            println!(
                "collection byoc-{}: {} tile(s) indexed",
                report.collection,
                report.tiles.len()
            );
        }
        CollectionCmd::List { db } => {
            for c in Store::open(&db)?.byoc_collections()? {
                println!(
                    "byoc-{}\t{} tile(s)\t{}\t{}",
                    c.id,
                    c.tile_count,
                    c.bands.join(","),
                    c.template
                );
            }
        }
    }
    Ok(())
}

fn eval(
    path: &std::path::Path,
    explain: bool,
    pixels: Option<&std::path::Path>,
    raw: bool,
    time_budget: Duration,
    collection: Option<&str>,
) -> Result<()> {
    let bands: &[&str] = match collection {
        None => &[],
        Some(name) => match tessera::data::bands_of(name) {
            Some(bands) => bands,
            None => bail!("unknown collection '{name}' (its band names are not known here)"),
        },
    };
    if path.is_dir() {
        if pixels.is_some() {
            bail!("--pixels takes one script, not a folder");
        }
        return explain_dir(path);
    }
    let source = tessera::evalscript::wasm::precompiled::read_evalscript_file(path)
        .with_context(|| format!("reading {}", path.display()))?;
    if let Some(pixels) = pixels {
        if tessera::evalscript::wasm::precompiled::parse(&source).is_some() {
            bail!(
                "{}: --pixels needs the JavaScript evalscript; a precompiled WebAssembly \
                 module cannot be run per pixel for debugging",
                path.display()
            );
        }
        let text = std::fs::read_to_string(pixels)
            .with_context(|| format!("reading {}", pixels.display()))?;
        let doc: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", pixels.display()))?;
        let mut program = tessera::evalscript::Program::compile_for_collection(&source, bands)
            .with_context(|| format!("compiling {}", path.display()))?;
        program.set_time_budget(time_budget);
        if explain {
            eprintln!("tier: boa interpreter (--pixels always runs evaluatePixel in boa)");
        }
        let result = program
            .evaluate_json(&doc, raw)
            .with_context(|| format!("evaluating {} on {}", path.display(), pixels.display()))?;
        println!("{result}");
        return Ok(());
    }
    let program = tessera::evalscript::Program::compile_for_collection(&source, bands)?;
    let setup = program.setup();
    println!("format: {:?}", program.format());
    println!("input bands: {}", setup.input_bands.join(", "));
    for o in &setup.outputs {
        println!("output '{}': {} band(s), {}", o.id, o.bands, o.sample_type);
    }
    println!("mosaicking: {:?}", setup.mosaicking);
    if explain {
        match program.boa_reason() {
            None => println!("tier: compiled (WebAssembly in wasmtime)"),
            Some(reason) => println!("tier: boa interpreter, because {reason}"),
        }
    }
    Ok(())
}

/// `tessera eval [--explain] DIR`: the tier of every `.js`/`.txt` script in the folder,
/// with totals and fallback reasons (compiling runs each script's setup()).
fn explain_dir(dir: &std::path::Path) -> Result<()> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "js" || x == "txt"))
        .collect();
    paths.sort();
    let mut scripts = Vec::new();
    for p in &paths {
        let source =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        scripts.push((name.unwrap_or_default(), source));
    }
    let rows = tessera::evalscript::coverage::explain(
        scripts.iter().map(|(n, s)| (n.clone(), s.as_str())),
    );
    print!("{}", tessera::evalscript::coverage::render(&rows));
    Ok(())
}

fn grid(command: GridCmd) -> Result<()> {
    let GridCmd::Tiles {
        grid,
        resolution,
        aoi,
        buffer_x,
        buffer_y,
        out,
    } = command;
    let text =
        std::fs::read_to_string(&aoi).with_context(|| format!("reading {}", aoi.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", aoi.display()))?;
    let spec = tessera::grid::TilingSpec {
        grid_id: grid,
        resolution,
        buffer_x,
        buffer_y,
    };
    // Streamed: Europe on grid 1 is 231,001 tiles, which as one JSON tree took 1.85 GB.
    let count = match out {
        Some(path) => {
            let file = std::fs::File::create(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            tessera::grid::write_tiles_geojson(&doc, &spec, std::io::BufWriter::new(file))
                .with_context(|| format!("writing {}", path.display()))?
        }
        None => {
            let stdout = std::io::stdout().lock();
            let mut w = std::io::BufWriter::with_capacity(1 << 16, stdout);
            let n = tessera::grid::write_tiles_geojson(&doc, &spec, &mut w)?;
            std::io::Write::write_all(&mut w, b"\n")?;
            std::io::Write::flush(&mut w)?;
            n
        }
    };
    eprintln!("{count} tiles");
    Ok(())
}

/// The client id that owns requests made by `tessera run`.
const LOCAL_CLIENT: &str = "local";

fn run(config: EngineConfig, path: &PathBuf, evalscript: Option<&std::path::Path>) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut body: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    if let Some(script) = evalscript {
        // A .wasm module becomes its `//!tessera-wasm base64:` text, as over HTTP.
        let source = tessera::evalscript::wasm::precompiled::read_evalscript_file(script)
            .with_context(|| format!("reading {}", script.display()))?;
        match body
            .get_mut("processRequest")
            .and_then(|p| p.as_object_mut())
        {
            Some(process) => {
                process.insert("evalscript".into(), source.into());
            }
            None => bail!("{}: processRequest must be an object", path.display()),
        }
    }
    let data_dir = config.data_dir.clone();
    // The local single-user command: whoever runs it is the operator, so outputs go
    // wherever the body says (relative paths under the data folder), unconfined.
    let engine = Engine::start(EngineConfig {
        outputs: OutputPolicy::unconfined(),
        ..config
    })?;
    let record = engine.create(LOCAL_CLIENT, &body)?;
    let id = record.id.clone();
    eprintln!("request {id}: {} tiles estimated", record.tile_count);
    engine.act(LOCAL_CLIENT, &id, Event::Start)?;

    let started = Instant::now();
    let progress = loop {
        let p = engine.progress(LOCAL_CLIENT, &id)?;
        draw_progress(
            p.tiles.processed + p.tiles.failed,
            p.tile_count.max(0) as u64,
            started.elapsed(),
        );
        if matches!(
            p.status,
            Status::Done | Status::Partial | Status::Failed | Status::Canceled
        ) {
            break p;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!();
    let record = engine.get(LOCAL_CLIENT, &id)?;
    if let Some(e) = &record.error {
        eprintln!("error: {e}");
    }
    let pu = engine.store().pu_totals(&id)?;
    let template = tessera::api::validate(&record.body)?.tile_path;
    println!("status: {}", progress.status.as_str());
    println!(
        "tiles: {} processed, {} failed, of {}",
        progress.tiles.processed, progress.tiles.failed, progress.tile_count
    );
    println!(
        "outputs: {} (relative paths are under {})",
        template.replace("<requestId>", &id),
        data_dir.display()
    );
    println!(
        "processing units: {:.3} charged for tiles, {:.3} minimum top-up, {:.3} refunded of {:.3} reserved",
        pu.charged, pu.minimum, pu.refunded, pu.reserved
    );
    println!("time: {}", engine.stats().breakdown());
    if progress.status != Status::Done {
        bail!("request ended {}", progress.status.as_str());
    }
    Ok(())
}

fn draw_progress(done: u64, total: u64, elapsed: Duration) {
    const WIDTH: u64 = 30;
    let filled = (done * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    let eta = if done == 0 || done >= total {
        "--".to_string()
    } else {
        let per_tile = elapsed.as_secs_f64() / done as f64;
        humantime::format_duration(Duration::from_secs(
            (per_tile * (total - done) as f64) as u64,
        ))
        .to_string()
    };
    eprint!(
        "\r[{}{}] {done}/{total} tiles, ETA {eta}   ",
        "#".repeat(filled as usize),
        ".".repeat((WIDTH - filled) as usize)
    );
    let _ = std::io::stderr().flush();
}
