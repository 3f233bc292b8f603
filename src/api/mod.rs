//! The wire model of Batch v1: what a create body must contain, and the JSON shapes the
//! service answers with. No I/O: `validate` turns a create body into a typed [`BatchSpec`]
//! and the `*_json` functions render stored records exactly as `sentinelhub` expects them.
//!
//! The create body is stored *verbatim* (the client compares echoes such as `tilingGrid`
//! for equality), so the typed spec is always re-derived from it rather than stored apart.

pub mod limits;
pub mod v2;
mod view;

pub use limits::{LimitError, Limits};

pub use view::{
    grid_json, list_json, request_json, tile_json, ListLinks, RequestRecord, TileRecord,
};

use serde_json::{json, Map, Value};

use crate::grid::{self, Aoi, TilingSpec};

/// Collection types this server can read. The bundled synthetic collection is always there;
/// real Sentinel-2 and BYOC collections arrive with the data issue.
pub const KNOWN_COLLECTIONS: &[&str] = crate::data::COLLECTIONS;

/// A create body that passed validation, in the form the engine works with.
#[derive(Debug, Clone)]
pub struct BatchSpec {
    pub aoi: Aoi,
    pub tiling: TilingSpec,
    pub evalscript: String,
    pub collection: String,
    /// `dataFilter.timeRange` as given (ISO strings), if any.
    pub time_range: Option<(String, String)>,
    /// `dataFilter` and `processing` as the reader takes them (units come from setup()).
    pub filter: crate::data::Filter,
    /// The output path template with placeholders, after the plain-prefix rule.
    pub tile_path: String,
    /// `processRequest.output.responses`: identifier and encoder per output.
    pub responses: Vec<ResponseSpec>,
    /// Every entry of `processRequest.input.data`, in order; `collection`, `time_range`
    /// and `filter` above repeat the first one. A data-fusion request has several, each
    /// with an `id` that the evalscript's `setup().input[].datasource` names.
    pub datasources: Vec<DatasourceSpec>,
    /// `output.cogOutput`/`cogParameters`/`overwrite`/`skipExisting`.
    pub output: crate::output::OutputOptions,
    /// Batch v2 `{"type": "zarr"}` output: one Zarr store instead of a file per tile.
    pub zarr: Option<v2::ZarrOutput>,
}

/// One `processRequest.input.data[]` entry.
#[derive(Debug, Clone)]
pub struct DatasourceSpec {
    /// `id`; required and unique when the request lists several entries.
    pub id: Option<String>,
    pub collection: String,
    pub time_range: Option<(String, String)>,
    pub filter: crate::data::Filter,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResponseSpec {
    pub identifier: String,
    /// The encoder; its `extension()` is the `<format>` placeholder.
    pub encoder: crate::output::OutputFormat,
}

/// Why a create (or update) body was refused; always a 400 with `COMMON_BAD_PAYLOAD`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadPayload(String),
    #[error(transparent)]
    Grid(#[from] grid::GridError),
    #[error("invalid output location: {0}")]
    Output(#[from] crate::output::OutputError),
    #[error(transparent)]
    Limit(#[from] LimitError),
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadPayload(msg.into())
}

/// The members of a create body that are echoed back unchanged.
pub const ECHOED_FIELDS: &[&str] = &[
    "processRequest",
    "tilingGrid",
    "output",
    "bucketName",
    "zarrOutput",
    "description",
];

/// Normalises a create body: folds the deprecated top-level `tilingGridId`/`resolution`
/// into `tilingGrid`, fills `bufferX`/`bufferY` with 0 (clients compare the echo with all
/// four keys), and keeps only the echoed members.
pub fn normalise_create(body: &Value) -> Result<Map<String, Value>, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| bad("the request body must be a JSON object"))?;
    let mut out = Map::new();
    for key in ECHOED_FIELDS {
        if let Some(v) = obj.get(*key) {
            if !v.is_null() {
                out.insert((*key).to_string(), v.clone());
            }
        }
    }
    if !out.contains_key("tilingGrid") {
        if let (Some(id), Some(res)) = (obj.get("tilingGridId"), obj.get("resolution")) {
            out.insert("tilingGrid".into(), json!({"id": id, "resolution": res}));
        }
    }
    if let Some(Value::Object(tg)) = out.get_mut("tilingGrid") {
        tg.entry("bufferX").or_insert(json!(0));
        tg.entry("bufferY").or_insert(json!(0));
    }
    Ok(out)
}

/// Validates a normalised create body (see [`normalise_create`]) into a [`BatchSpec`].
/// The evalscript is only checked for presence: the hosted service validates it during
/// analysis, and so do we.
pub fn validate(body: &Map<String, Value>) -> Result<BatchSpec, ApiError> {
    validate_with(body, grid::parse_bounds)
}

/// [`validate`] of a stored body: its AOI passed every check at create, so the
/// self-intersection check is not run again (job loads happen on the request's actor).
pub fn validate_stored(body: &Map<String, Value>) -> Result<BatchSpec, ApiError> {
    validate_with(body, grid::parse_stored_bounds)
}

fn validate_with(
    body: &Map<String, Value>,
    parse_bounds: fn(&Value) -> Result<Aoi, grid::GridError>,
) -> Result<BatchSpec, ApiError> {
    let pr = body
        .get("processRequest")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("processRequest is required and must be an object"))?;

    let tiling = tiling_spec(body.get("tilingGrid"))?;

    let input = pr
        .get("input")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("processRequest.input is required"))?;
    let bounds = input
        .get("bounds")
        .ok_or_else(|| bad("processRequest.input.bounds is required for a batch request"))?;
    let aoi = parse_bounds(bounds)?;

    let data = input
        .get("data")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| bad("processRequest.input.data must list at least one collection"))?;
    let datasources = data
        .iter()
        .enumerate()
        .map(|(index, entry)| datasource(entry, index, data.len()))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, d) in datasources.iter().enumerate() {
        if let Some(id) = &d.id {
            if datasources[..i].iter().any(|o| o.id.as_ref() == Some(id)) {
                return Err(bad(format!(
                    "processRequest.input.data: id '{id}' is used more than once"
                )));
            }
        }
    }
    let first = &datasources[0];
    let (collection, time_range, filter) = (
        first.collection.clone(),
        first.time_range.clone(),
        first.filter.clone(),
    );

    let evalscript = pr
        .get("evalscript")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| bad("processRequest.evalscript is required"))?
        .to_string();

    let output = crate::output::OutputOptions::from_output(body.get("output"))?;
    let responses = responses(pr.get("output"), &output)?;
    let tile_path = tile_path(body, &responses)?;

    Ok(BatchSpec {
        aoi,
        tiling,
        evalscript,
        collection,
        time_range,
        filter,
        tile_path,
        responses,
        output,
        datasources,
        zarr: None,
    })
}

/// One `input.data[]` entry: `type`, `id` (required when `count > 1`), `dataFilter`,
/// `processing`.
fn datasource(entry: &Value, index: usize, count: usize) -> Result<DatasourceSpec, ApiError> {
    let at = format!("processRequest.input.data[{index}]");
    let collection = entry
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{at}.type is required")))?
        .to_string();
    if !crate::data::is_known_collection(&collection) {
        return Err(bad(format!(
            "unknown collection type '{collection}' in {at}.type; this server knows: {} and byoc-<collection id>",
            KNOWN_COLLECTIONS.join(", ")
        )));
    }
    let id = match entry.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
        Some(other) => {
            return Err(bad(format!(
                "{at}.id must be a non-empty string, got {other}"
            )))
        }
    };
    if id.is_none() && count > 1 {
        return Err(bad(format!(
            "{at}.id is required: with several collections (data fusion) each needs an id that \
             the evalscript's setup() names as input[].datasource"
        )));
    }
    let time_range = entry
        .pointer("/dataFilter/timeRange")
        .map(|tr| {
            let from = tr.get("from").and_then(Value::as_str);
            let to = tr.get("to").and_then(Value::as_str);
            match (from, to) {
                (Some(f), Some(t)) => Ok((f.to_string(), t.to_string())),
                _ => Err(bad("dataFilter.timeRange needs 'from' and 'to' strings")),
            }
        })
        .transpose()?;
    let filter = data_filter(entry, time_range.as_ref())?;
    Ok(DatasourceSpec {
        id,
        collection,
        time_range,
        filter,
    })
}

/// `dataFilter` (time range, maxCloudCoverage, mosaickingOrder) and `processing`
/// (upsampling, downsampling) of the collection entry.
fn data_filter(
    entry: &Value,
    time_range: Option<&(String, String)>,
) -> Result<crate::data::Filter, ApiError> {
    use crate::data::{day_of, Filter, MosaickingOrder};
    use crate::raster::warp::Resampling;
    let mut f = Filter::default();
    if let Some((from, to)) = time_range {
        let day = |s: &str| {
            day_of(s).ok_or_else(|| {
                bad(format!(
                    "dataFilter.timeRange: '{s}' is not an ISO-8601 timestamp"
                ))
            })
        };
        f.from_day = Some(day(from)?);
        f.to_day = Some(day(to)?);
    }
    let df = entry.get("dataFilter");
    if let Some(cc) = df.and_then(|d| d.get("maxCloudCoverage")) {
        f.max_cloud_coverage = cc
            .as_f64()
            .filter(|c| (0.0..=100.0).contains(c))
            .ok_or_else(|| bad("dataFilter.maxCloudCoverage must be a number from 0 to 100"))?;
    }
    if let Some(order) = df.and_then(|d| d.get("mosaickingOrder")) {
        f.order = order
            .as_str()
            .and_then(MosaickingOrder::parse)
            .ok_or_else(|| {
                bad(format!(
                "dataFilter.mosaickingOrder must be mostRecent, leastRecent or leastCC, got {order}"
            ))
            })?;
    }
    for (key, slot) in [
        ("upsampling", &mut f.upsampling),
        ("downsampling", &mut f.downsampling),
    ] {
        if let Some(v) = entry.get("processing").and_then(|p| p.get(key)) {
            *slot = v.as_str().and_then(Resampling::parse).ok_or_else(|| {
                bad(format!(
                    "processing.{key} must be NEAREST, BILINEAR or BICUBIC, got {v}"
                ))
            })?;
        }
    }
    if let Some(v) = entry
        .get("processing")
        .and_then(|p| p.get("harmonizeValues"))
    {
        f.harmonize = v.as_bool().ok_or_else(|| {
            bad(format!(
                "processing.harmonizeValues must be true or false, got {v}"
            ))
        })?;
    }
    Ok(f)
}

fn tiling_spec(v: Option<&Value>) -> Result<TilingSpec, ApiError> {
    let tg = v
        .and_then(Value::as_object)
        .ok_or_else(|| bad("tilingGrid is required: {\"id\": <grid id>, \"resolution\": <m>}"))?;
    let grid_id = tg
        .get("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad("tilingGrid.id must be an integer grid id"))?;
    let resolution = tg
        .get("resolution")
        .and_then(Value::as_f64)
        .ok_or_else(|| bad("tilingGrid.resolution must be a number"))?;
    let buffer = |key: &str| -> Result<i32, ApiError> {
        match tg.get(key) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => v
                .as_i64()
                .filter(|b| (0..=i16::MAX as i64).contains(b))
                .map(|b| b as i32)
                .ok_or_else(|| bad(format!("tilingGrid.{key} must be a non-negative int16"))),
        }
    };
    let spec = TilingSpec {
        grid_id,
        resolution,
        buffer_x: buffer("bufferX")?,
        buffer_y: buffer("bufferY")?,
    };
    spec.grid()?;
    Ok(spec)
}

fn responses(
    output: Option<&Value>,
    options: &crate::output::OutputOptions,
) -> Result<Vec<ResponseSpec>, ApiError> {
    let list = match output.and_then(|o| o.get("responses")) {
        None | Some(Value::Null) => {
            return Ok(vec![ResponseSpec {
                identifier: "default".into(),
                encoder: crate::output::OutputFormat::for_response(
                    "image/tiff",
                    "default",
                    options,
                )?,
            }])
        }
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(_) => {
            return Err(bad(
                "processRequest.output.responses must be a non-empty array",
            ))
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for r in list {
        let identifier = r
            .get("identifier")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        let mime = r
            .pointer("/format/type")
            .and_then(Value::as_str)
            .unwrap_or("image/tiff");
        // The identifier is the <outputId> of file names: one plain path segment.
        crate::output::confine::check_segment(&identifier).map_err(|reason| {
            bad(format!(
                "output identifier {identifier:?} cannot name a file: {reason}"
            ))
        })?;
        let encoder = crate::output::OutputFormat::for_response(mime, &identifier, options)?;
        if out
            .iter()
            .any(|o: &ResponseSpec| o.identifier == identifier)
        {
            return Err(bad(format!(
                "output identifier '{identifier}' appears twice"
            )));
        }
        out.push(ResponseSpec {
            identifier,
            encoder,
        });
    }
    Ok(out)
}

fn tile_path(body: &Map<String, Value>, responses: &[ResponseSpec]) -> Result<String, ApiError> {
    if body.contains_key("zarrOutput") {
        return Err(bad(
            "zarrOutput is not supported yet; use output.defaultTilePath",
        ));
    }
    let default_tile_path = body
        .get("output")
        .and_then(|o| o.get("defaultTilePath"))
        .and_then(Value::as_str);
    let location = match (
        default_tile_path,
        body.get("bucketName").and_then(Value::as_str),
    ) {
        (Some(p), _) => p.to_string(),
        (None, Some(bucket)) => crate::output::bucket_prefix(bucket),
        (None, None) => {
            return Err(bad(
                "an output location is required: output.defaultTilePath or bucketName",
            ))
        }
    };
    let template = crate::output::resolve_template(&location, responses.len())?;
    // Every expansion must be a well-formed location; whether the client may write there
    // is the engine's check (it knows the client).
    let ids: Vec<&str> = responses.iter().map(|r| r.identifier.as_str()).collect();
    crate::output::confine::check_template(&template, &ids).map_err(|reason| {
        crate::output::OutputError::UnsupportedLocation {
            location: location.clone(),
            reason,
        }
    })?;
    Ok(template)
}

/// Validates a PUT body: only `description` and `output.collectionId` may change.
pub fn validate_update(body: &Value) -> Result<Map<String, Value>, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| bad("the request body must be a JSON object"))?;
    for key in obj.keys() {
        if key != "description" && key != "output" {
            return Err(bad(format!(
                "'{key}' cannot be updated; only description and output.collectionId can"
            )));
        }
    }
    if let Some(d) = obj.get("description") {
        if !d.is_string() && !d.is_null() {
            return Err(bad("description must be a string"));
        }
    }
    // The output location is fixed at create, where it was checked: a PUT cannot move it.
    match obj.get("output") {
        None | Some(Value::Null) => {}
        Some(Value::Object(output)) => {
            if let Some(key) = output.keys().find(|k| *k != "collectionId") {
                return Err(bad(format!(
                    "output.{key} cannot be updated; only description and output.collectionId can"
                )));
            }
        }
        Some(_) => return Err(bad("output must be an object")),
    }
    Ok(obj.clone())
}

/// Applies a validated PUT body to a stored create body.
pub fn apply_update(body: &mut Map<String, Value>, patch: &Map<String, Value>) {
    if let Some(d) = patch.get("description") {
        if d.is_null() {
            body.remove("description");
        } else {
            body.insert("description".into(), d.clone());
        }
    }
    if let Some(c) = patch.get("output").and_then(|o| o.get("collectionId")) {
        if let Some(Value::Object(out)) = body.get_mut("output") {
            out.insert("collectionId".into(), c.clone());
        }
    }
}

#[cfg(test)]
mod output_tests;
