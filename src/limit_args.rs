//! `tessera serve` / `tessera run` flags for the documented limits (`api::Limits`); each
//! defaults to the documented value, so an operator only names the ones to change.

use tessera::api::limits::{Limits, Rate};

#[derive(clap::Args, Clone, Default)]
pub struct LimitArgs {
    /// Most tiles one request may cover [default: 100000].
    #[arg(long)]
    max_tiles: Option<u64>,
    /// Largest AOI area in km² [default: 10000000].
    #[arg(long)]
    max_area_km2: Option<f64>,
    /// Largest tilingGrid.bufferX / bufferY in pixels [default: 1000].
    #[arg(long)]
    max_buffer_px: Option<u32>,
    /// Largest tile width or height in pixels, buffers included [default: 12000].
    #[arg(long)]
    max_tile_side_px: Option<u64>,
    /// Most positions in an AOI geometry [default: 200000].
    #[arg(long)]
    max_aoi_vertices: Option<usize>,
    /// Largest evalscript in bytes [default: 2097152].
    #[arg(long)]
    max_evalscript_bytes: Option<usize>,
    /// Largest description in bytes [default: 16384].
    #[arg(long)]
    max_description_bytes: Option<usize>,
    /// Most outputs (processRequest.output.responses) per request [default: 32].
    #[arg(long)]
    max_outputs: Option<usize>,
    /// Largest list page `count` [default: 1000].
    #[arg(long)]
    max_list_count: Option<u64>,
    /// Bytes of stored bodies one list page may carry [default: 16777216].
    #[arg(long)]
    max_page_bytes: Option<usize>,
    /// Wrong-secret token requests per client id, e.g. 30/min,burst=10
    /// [default: 0.5/s,burst=10].
    #[arg(long, value_parser = Rate::parse)]
    token_failure_rate: Option<Rate>,
    /// Creates per client, e.g. 20/s,burst=100 [default: 20/s,burst=100].
    #[arg(long, value_parser = Rate::parse)]
    create_rate: Option<Rate>,
}

impl LimitArgs {
    pub fn apply(&self, l: &mut Limits) {
        macro_rules! set {
            ($($f:ident),*) => { $(if let Some(v) = self.$f { l.$f = v; })* };
        }
        set!(
            max_tiles,
            max_area_km2,
            max_buffer_px,
            max_tile_side_px,
            max_aoi_vertices,
            max_evalscript_bytes,
            max_description_bytes,
            max_outputs,
            max_list_count,
            max_page_bytes,
            token_failure_rate,
            create_rate
        );
    }
}
