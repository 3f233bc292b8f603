//! Runs one batch request in-process, without HTTP: the embedded-engine use of Tessera.
//!
//!     cargo run --example embedded -- fixtures/requests/ndvi.json
//!
//! Outputs go under ./tessera-data (relative output paths resolve there).

use std::time::Duration;

use tessera::engine::lifecycle::{Event, Status};
use tessera::{Engine, EngineConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fixtures/requests/ndvi.json".into());
    let body: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;

    let dir = std::env::temp_dir().join("tessera-embedded-example");
    let engine = Engine::start(EngineConfig {
        db_path: dir.join("tessera.db"),
        data_dir: dir.join("data"),
        ..EngineConfig::default()
    })?;

    // Any string identifies the owner of a request; HTTP uses the OAuth client id.
    let request = engine.create("example", &body)?;
    engine.act("example", &request.id, Event::Start)?;
    loop {
        let p = engine.progress("example", &request.id)?;
        println!(
            "{:?}: {}/{} tiles",
            p.status, p.tiles.processed, p.tile_count
        );
        if matches!(
            p.status,
            Status::Done | Status::Partial | Status::Failed | Status::Canceled
        ) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Relative output paths land in the owner's folder (confined, as `tessera serve`).
    println!(
        "outputs under {}",
        dir.join("data/clients/example").display()
    );
    Ok(())
}
