//! The multi-scene input of ORBIT/TILE evaluation and its result.

use crate::raster::SampleBuffer;

/// One scene (ORBIT: one orbit/day, TILE: one tile) of a block: its band planes, in
/// `Setup::input_bands` order, and the metadata scripts see in `scenes`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SceneInput<'a> {
    pub bands: Vec<&'a [f32]>,
    /// Acquisition time, milliseconds since the Unix epoch (UTC).
    pub date_ms: i64,
    /// ORBIT `dateFrom`/`dateTo`; default to the UTC day around `date_ms`.
    pub date_from_ms: Option<i64>,
    pub date_to_ms: Option<i64>,
    pub tile_id: Option<String>,
    pub orbit_id: Option<i64>,
    pub sh_id: Option<i64>,
    /// Percent, 0..100.
    pub cloud_coverage: Option<f64>,
    pub data_path: Option<String>,
}

impl SceneInput<'_> {
    /// The metadata as the prelude's `__tessera_prepare` reads it.
    pub(crate) fn meta_json(&self) -> serde_json::Value {
        serde_json::json!({
            "date": self.date_ms,
            "dateFrom": self.date_from_ms,
            "dateTo": self.date_to_ms,
            "tileId": self.tile_id,
            "orbitId": self.orbit_id,
            "shId": self.sh_id,
            "cloudCoverage": self.cloud_coverage,
            "dataPath": self.data_path,
        })
    }
}

/// One datasource of a data-fusion evaluation (`Program::evaluate_fusion`): its id as
/// `setup().input[].datasource` names it, and its scenes (SIMPLE: exactly one, the
/// mosaic), each with the bands of that datasource in `DatasourceInput::bands` order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FusionSource<'a> {
    pub id: String,
    pub scenes: Vec<SceneInput<'a>>,
}

/// What `Program::evaluate_scenes` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneEvaluation {
    /// One buffer per output in `Setup::outputs` order, band-sequential.
    pub outputs: Vec<SampleBuffer>,
    /// Band count of each output for this evaluation (`updateOutput` may change them).
    pub bands: Vec<usize>,
    /// `outputMetadata.userData` after `updateOutputMetadata`, for the `userdata` output.
    pub user_data: Option<serde_json::Value>,
    /// Scenes `evaluatePixel` saw after the scene hooks (1 for SIMPLE); for data fusion,
    /// one count per datasource in `Setup::datasources` order. The PU sample factor.
    pub scenes_used: Vec<usize>,
}
