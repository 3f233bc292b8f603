//! The Batch v2 wire model (`batch-api.md` §13, §16): what a v2 create body may hold, how
//! it becomes the engine's [`BatchSpec`], and the task object `sentinelhub` 3.12 reads. No
//! I/O.
//!
//! One engine serves both APIs. A v2 body is stored as given (minus its credentials) and
//! its spec is derived *through the v1 model* ([`to_v1_body`]): the same validation, tiling
//! grids, encoders and path templates, so the two APIs cannot drift apart. Each API renders
//! the stored state in its own enums; v2's mapping is [`task_status`] and
//! [`task_user_action`], written out for every engine state because 3.12.0 raises on a
//! value outside its enums (PARTIAL, CANCELED, CANCEL).

use serde_json::{json, Map, Value};

use super::{bad, ApiError, BatchSpec, RequestRecord};
use crate::engine::lifecycle::{Status, UserAction};

/// The members of a v2 create body that are kept (and echoed as the task's `request`).
const V2_FIELDS: &[&str] = &[
    "processRequest",
    "input",
    "output",
    "instanceType",
    "description",
];

/// v1 members that have no meaning in v2; naming them gets a hint instead of silence.
const V1_ONLY: &[(&str, &str)] = &[
    ("tilingGrid", "input: {\"type\": \"tiling-grid\", ...}"),
    ("tilingGridId", "input: {\"type\": \"tiling-grid\", ...}"),
    ("resolution", "input.resolution"),
    ("bucketName", "output.delivery.s3.url"),
    ("zarrOutput", "output: {\"type\": \"zarr\", ...}"),
];

/// The keys of an `s3` access specification that are secrets: used for the request, stored
/// apart from its body, never echoed back or logged.
const SECRET_KEYS: &[&str] = &["accessKey", "secretAccessKey"];

/// Credentials given in a request's `output.delivery.s3`, for that request's outputs only.
#[derive(Clone, PartialEq, Eq)]
pub struct DeliveryCredentials {
    pub access_key: String,
    pub secret_access_key: String,
    /// `region` of the access specification, when given (the server's otherwise).
    pub region: Option<String>,
}

/// Never prints the keys: a credential must not reach a log line through `{:?}`.
impl std::fmt::Debug for DeliveryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryCredentials")
            .field("access_key", &"***")
            .field("secret_access_key", &"***")
            .field("region", &self.region)
            .finish()
    }
}

/// A v2 create body after [`normalise_create`].
#[derive(Debug, Clone)]
pub struct V2Create {
    /// What is stored and echoed: the v2 members, without any credential.
    pub body: Map<String, Value>,
    /// The delivery credentials, if the body gave any.
    pub credentials: Option<DeliveryCredentials>,
}

/// True for a body stored through the v2 API (v1 bodies never keep an `input` member).
pub fn is_v2_body(body: &Map<String, Value>) -> bool {
    body.contains_key("input")
}

/// Checks the shape of a v2 create body, takes its credentials out and keeps the v2
/// members. The spec itself is checked by [`validate`].
pub fn normalise_create(body: &Value) -> Result<V2Create, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| bad("the request body must be a JSON object"))?;
    for (key, instead) in V1_ONLY {
        if obj.contains_key(*key) {
            return Err(bad(format!(
                "'{key}' is a Batch v1 field; in Batch v2 use {instead}"
            )));
        }
    }
    let mut out = Map::new();
    for key in V2_FIELDS {
        if let Some(v) = obj.get(*key) {
            if !v.is_null() {
                out.insert((*key).to_string(), v.clone());
            }
        }
    }
    if let Some(t) = out.get("instanceType") {
        if !matches!(t.as_str(), Some("normal" | "large")) {
            return Err(bad(format!(
                "instanceType must be \"normal\" or \"large\", got {t}"
            )));
        }
    }
    if let Some(d) = out.get("description") {
        if !d.is_string() {
            return Err(bad("description must be a string"));
        }
    }
    input_of(&out)?;
    let credentials = {
        let output = out
            .get_mut("output")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| {
                bad("output is required: {\"type\": \"raster\", \"delivery\": {\"s3\": {\"url\": ...}}}")
            })?;
        let s3 = delivery_s3_mut(output, "output.delivery")?;
        take_credentials(s3, "output.delivery.s3")?
    };
    Ok(V2Create {
        body: out,
        credentials,
    })
}

/// `output.delivery.s3` (or `input.features.s3`) as a mutable object, with its `url` checked.
fn delivery_s3_mut<'a>(
    parent: &'a mut Map<String, Value>,
    at: &str,
) -> Result<&'a mut Map<String, Value>, ApiError> {
    let key = at.rsplit('.').next().unwrap_or(at);
    let s3 = parent
        .get_mut(key)
        .and_then(|d| d.get_mut("s3"))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| {
            bad(format!(
                "{at}.s3 is required: {{\"url\": \"s3://bucket/...\"}}"
            ))
        })?;
    match s3.get("url") {
        Some(Value::String(u)) if !u.trim().is_empty() => Ok(s3),
        _ => Err(bad(format!("{at}.s3.url must be a non-empty string"))),
    }
}

/// Removes `accessKey`/`secretAccessKey` from an access specification; both or neither.
fn take_credentials(
    s3: &mut Map<String, Value>,
    at: &str,
) -> Result<Option<DeliveryCredentials>, ApiError> {
    if s3.get("iamRoleARN").is_some_and(|v| !v.is_null()) {
        return Err(bad(format!(
            "{at}.iamRoleARN is not supported by this server; give accessKey and secretAccessKey"
        )));
    }
    let mut take = |key: &str| -> Result<Option<String>, ApiError> {
        match s3.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
            Some(_) => Err(bad(format!("{at}.{key} must be a non-empty string"))),
        }
    };
    let access_key = take(SECRET_KEYS[0])?;
    let secret_access_key = take(SECRET_KEYS[1])?;
    let region = match s3.get("region") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) if !r.trim().is_empty() => Some(r.clone()),
        Some(other) => {
            return Err(bad(format!(
                "{at}.region must be a non-empty string, got {other}"
            )))
        }
    };
    match (access_key, secret_access_key) {
        (Some(access_key), Some(secret_access_key)) => Ok(Some(DeliveryCredentials {
            access_key,
            secret_access_key,
            region,
        })),
        (None, None) => Ok(None),
        _ => Err(bad(format!(
            "{at}: give both accessKey and secretAccessKey, or neither"
        ))),
    }
}

/// The typed `input` of a stored v2 body.
enum Input<'a> {
    TilingGrid(&'a Map<String, Value>),
    GeoPackage,
}

fn input_of(body: &Map<String, Value>) -> Result<Input<'_>, ApiError> {
    let input = body
        .get("input")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            bad("input is required: {\"type\": \"tiling-grid\", \"id\": <grid id>, \"resolution\": <m>}")
        })?;
    match input.get("type").and_then(Value::as_str) {
        Some("tiling-grid") => Ok(Input::TilingGrid(input)),
        Some("geopackage") => Ok(Input::GeoPackage),
        other => Err(bad(format!(
            "input.type must be \"tiling-grid\" or \"geopackage\", got {}",
            other.map_or("nothing".to_string(), |t| format!("\"{t}\""))
        ))),
    }
}

/// The v1 create body equivalent to a stored v2 body: `input` (tiling-grid) becomes
/// `tilingGrid`, a `raster` output's `delivery.s3.url` becomes `defaultTilePath` with the
/// same placeholders, and its flags carry over. The engine validates and runs that.
pub fn to_v1_body(body: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let mut v1 = Map::new();
    if let Some(pr) = body.get("processRequest") {
        v1.insert("processRequest".into(), pr.clone());
    }
    match input_of(body)? {
        Input::TilingGrid(tg) => {
            let mut grid = Map::new();
            for key in ["id", "resolution", "bufferX", "bufferY"] {
                if let Some(v) = tg.get(key) {
                    grid.insert(key.into(), v.clone());
                }
            }
            v1.insert("tilingGrid".into(), Value::Object(grid));
        }
        Input::GeoPackage => return Err(bad(
            "input.type \"geopackage\" is not supported by this server yet; use \"tiling-grid\"",
        )),
    }
    let output = body
        .get("output")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("output is required"))?;
    match output.get("type").and_then(Value::as_str) {
        Some("raster") => {}
        Some("zarr") => return Err(bad("a Zarr output has no Batch v1 equivalent")),
        other => {
            return Err(bad(format!(
                "output.type must be \"raster\" or \"zarr\", got {}",
                other.map_or("nothing".to_string(), |t| format!("\"{t}\""))
            )))
        }
    }
    let url = output
        .get("delivery")
        .and_then(|d| d.pointer("/s3/url"))
        .and_then(Value::as_str)
        .ok_or_else(|| bad("output.delivery.s3.url is required"))?;
    let mut out = Map::new();
    out.insert("defaultTilePath".into(), json!(url));
    for key in [
        "overwrite",
        "skipExisting",
        "cogOutput",
        "cogParameters",
        "createCollection",
        "collectionId",
    ] {
        if let Some(v) = output.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    v1.insert("output".into(), Value::Object(out));
    if let Some(d) = body.get("description") {
        v1.insert("description".into(), d.clone());
    }
    Ok(v1)
}

/// A `{"type": "zarr"}` output: where the store goes and how its arrays are made.
#[derive(Debug, Clone, PartialEq)]
pub struct ZarrOutput {
    /// `delivery.s3.url`: the store's folder; `<requestId>` is its only placeholder.
    pub root: String,
    /// `group.customAttributes`, added to the group's `.zattrs`.
    pub custom_attributes: Option<Map<String, Value>>,
    pub array_parameters: Option<Map<String, Value>>,
    /// `arrayOverrides`: per output id.
    pub array_overrides: Option<Map<String, Value>>,
}

impl ZarrOutput {
    /// The store's folder for a request.
    pub fn root_of(&self, request_id: &str) -> String {
        self.root.replace("<requestId>", request_id)
    }
}

/// Validates a stored (or normalised) v2 body into the engine's spec.
pub fn validate(body: &Map<String, Value>) -> Result<BatchSpec, ApiError> {
    let output_type = body
        .get("output")
        .and_then(|o| o.get("type"))
        .and_then(Value::as_str);
    if output_type == Some("zarr") {
        let (raster_body, zarr) = zarr_as_raster(body)?;
        let v1 = super::normalise_create(&Value::Object(to_v1_body(&raster_body)?))?;
        let mut spec = super::validate(&v1)?;
        spec.zarr = Some(zarr);
        return Ok(spec);
    }
    let v1 = super::normalise_create(&Value::Object(to_v1_body(body)?))?;
    super::validate(&v1)
}

/// A zarr body as the raster body the v1 model checks (grid, script, collections, one
/// `image/tiff` response per `zarr/array` one), with what makes it a Zarr output apart.
/// The raster body's output path is never written: the worker writes chunks instead.
fn zarr_as_raster(body: &Map<String, Value>) -> Result<(Map<String, Value>, ZarrOutput), ApiError> {
    let output = body
        .get("output")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("output is required"))?;
    let root = output
        .get("delivery")
        .and_then(|d| d.pointer("/s3/url"))
        .and_then(Value::as_str)
        .ok_or_else(|| bad("output.delivery.s3.url is required"))?
        .trim_end_matches('/')
        .to_string();
    if root.replace("<requestId>", "").contains('<') {
        return Err(bad(
            "a Zarr output's delivery.s3.url takes only the <requestId> placeholder",
        ));
    }
    if let Some(Value::Object(tg)) = body.get("input") {
        for key in ["bufferX", "bufferY"] {
            if tg.get(key).and_then(Value::as_i64).unwrap_or(0) != 0 {
                return Err(bad(format!(
                    "input.{key} must be 0 for a Zarr output (chunks are aligned to tiles)"
                )));
            }
        }
    }
    let group = output.get("group").and_then(Value::as_object);
    if let Some(f) = group.and_then(|g| g.get("zarr_format")) {
        if f != 2 {
            return Err(bad(format!("output.group.zarr_format must be 2, got {f}")));
        }
    }
    if let Some(o) = group
        .and_then(|g| g.get("coordinates"))
        .and_then(|c| c.get("origin"))
    {
        if o != "topLeft" {
            return Err(bad(format!(
                "output.group.coordinates.origin: only \"topLeft\" is written, got {o}"
            )));
        }
    }
    let object = |v: Option<&Value>, at: &str| -> Result<Option<Map<String, Value>>, ApiError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m.clone())),
            Some(_) => Err(bad(format!("{at} must be an object"))),
        }
    };
    let zarr = ZarrOutput {
        custom_attributes: object(
            group.and_then(|g| g.get("customAttributes")),
            "output.group.customAttributes",
        )?,
        // The client's helper spells it `arrayParameter` (sic): accept both.
        array_parameters: object(
            output
                .get("arrayParameters")
                .or_else(|| output.get("arrayParameter")),
            "output.arrayParameters",
        )?,
        array_overrides: object(output.get("arrayOverrides"), "output.arrayOverrides")?,
        root: root.clone(),
    };
    let mut raster = body.clone();
    raster.insert(
        "output".into(),
        json!({"type": "raster", "delivery": {"s3": {"url": format!("{root}/<outputId>/<tileName>.tif")}},
               "overwrite": true}),
    );
    if let Some(responses) = raster
        .get_mut("processRequest")
        .and_then(|p| p.pointer_mut("/output/responses"))
        .and_then(Value::as_array_mut)
    {
        for r in responses {
            let format = r.pointer("/format/type").and_then(Value::as_str);
            if format != Some("zarr/array") {
                return Err(bad(format!(
                    "a Zarr output needs every processRequest.output.responses format to be \
                     \"zarr/array\", got {}",
                    format.unwrap_or("none")
                )));
            }
            r["format"] = json!({"type": "image/tiff"});
        }
    }
    Ok((raster, zarr))
}

/// The spec of any stored body, whichever API created it.
pub fn validate_stored(body: &Map<String, Value>) -> Result<BatchSpec, ApiError> {
    if is_v2_body(body) {
        validate(body)
    } else {
        // Stored v1 bodies: the AOI was checked at create and is not re-checked.
        super::validate_stored(body)
    }
}

/// The v2 `request` of a request created through v1: `tilingGrid` as a tiling-grid
/// `input`, `defaultTilePath` (or `bucketName`) as a raster output's delivery URL.
pub fn from_v1_body(body: &Map<String, Value>) -> Map<String, Value> {
    let mut v2 = Map::new();
    if let Some(pr) = body.get("processRequest") {
        v2.insert("processRequest".into(), pr.clone());
    }
    if let Some(Value::Object(tg)) = body.get("tilingGrid") {
        let mut input = tg.clone();
        input.insert("type".into(), json!("tiling-grid"));
        v2.insert("input".into(), Value::Object(input));
    }
    let v1_output = body.get("output").and_then(Value::as_object);
    let url = v1_output
        .and_then(|o| o.get("defaultTilePath"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            body.get("bucketName")
                .and_then(Value::as_str)
                .map(crate::output::bucket_prefix)
        });
    let mut output = Map::new();
    output.insert("type".into(), json!("raster"));
    if let Some(url) = url {
        output.insert("delivery".into(), json!({"s3": {"url": url}}));
    }
    if let Some(o) = v1_output {
        for (k, v) in o {
            if k != "defaultTilePath" {
                output.insert(k.clone(), v.clone());
            }
        }
    }
    v2.insert("output".into(), Value::Object(output));
    if let Some(d) = body.get("description") {
        v2.insert("description".into(), d.clone());
    }
    v2
}

/// A PUT body of v2: only `description` may change.
pub fn validate_update(body: &Value) -> Result<Map<String, Value>, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| bad("the request body must be a JSON object"))?;
    if let Some(key) = obj.keys().find(|k| *k != "description") {
        return Err(bad(format!(
            "'{key}' cannot be updated; only description can"
        )));
    }
    super::validate_update(body)
}

/// The v2 status of every engine state. PARTIAL is DONE (v2 reports failed features in the
/// execution database and `error`, not in the status); a v1-canceled request is STOPPED.
pub fn task_status(status: Status) -> &'static str {
    match status {
        Status::Created => "CREATED",
        Status::Analysing => "ANALYSING",
        Status::AnalysisDone => "ANALYSIS_DONE",
        Status::Processing => "PROCESSING",
        Status::Done | Status::Partial => "DONE",
        Status::Failed => "FAILED",
        Status::Canceled | Status::Stopped => "STOPPED",
    }
}

/// The v2 user action of every engine user action: a v1 CANCEL shows as STOP.
pub fn task_user_action(action: UserAction) -> &'static str {
    match action {
        UserAction::None => "NONE",
        UserAction::Analyse => "ANALYSE",
        UserAction::Start => "START",
        UserAction::Cancel | UserAction::Stop => "STOP",
    }
}

/// `stoppedStatusReason`: USER_ACTION for a request a user stopped (or canceled through
/// v1), absent otherwise. This engine has no PU budget that runs out (OUT_OF_PU) and ends an
/// internal fault as FAILED with its error (not UNHEALTHY).
pub fn stopped_reason(status: Status) -> Option<&'static str> {
    match status {
        Status::Stopped | Status::Canceled => Some("USER_ACTION"),
        Status::Created
        | Status::Analysing
        | Status::AnalysisDone
        | Status::Processing
        | Status::Done
        | Status::Partial
        | Status::Failed => None,
    }
}

/// What the task object reports beyond the stored record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskProgress {
    /// Tiles PROCESSED and FAILED (for good) so far.
    pub processed: u64,
    pub failed: u64,
    /// PU charged so far.
    pub cost_pu: f64,
    /// When the record last changed (RFC 3339).
    pub last_updated: Option<String>,
}

/// `completionPercentage`: tiles finished (processed or failed for good) over all tiles,
/// 0-100; a DONE request with no tile is 100% complete.
pub fn completion_percentage(status: Status, tile_count: i64, progress: &TaskProgress) -> f64 {
    let total = tile_count.max(0) as u64;
    if total == 0 {
        return if matches!(status, Status::Done | Status::Partial) {
            100.0
        } else {
            0.0
        };
    }
    let finished = (progress.processed + progress.failed).min(total);
    // Two decimals: enough for a progress bar, and 100 only when all are finished.
    (finished as f64 * 10_000.0 / total as f64).floor() / 100.0
}

/// `BatchProcessRequest` of v2: `id`, `request` (the create body, without credentials),
/// `domainAccountId` and `status` (all four required by 3.12.0) and what it reads besides.
pub fn task_json(r: &RequestRecord, progress: &TaskProgress) -> Value {
    let request = if is_v2_body(&r.body) {
        r.body.clone()
    } else {
        from_v1_body(&r.body)
    };
    let mut obj = Map::new();
    obj.insert("id".into(), json!(r.id));
    obj.insert("request".into(), Value::Object(request));
    obj.insert("domainAccountId".into(), json!(r.client_id));
    obj.insert("status".into(), json!(task_status(r.status)));
    obj.insert("userAction".into(), json!(task_user_action(r.user_action)));
    if let Some(t) = &r.user_action_updated {
        obj.insert("userActionUpdated".into(), json!(t));
    }
    obj.insert("created".into(), json!(r.created));
    obj.insert(
        "completionPercentage".into(),
        json!(completion_percentage(r.status, r.tile_count, progress)),
    );
    if let Some(t) = &progress.last_updated {
        obj.insert("lastUpdated".into(), json!(t));
    }
    obj.insert("costPU".into(), json!(progress.cost_pu));
    if let Some(reason) = stopped_reason(r.status) {
        obj.insert("stoppedStatusReason".into(), json!(reason));
    }
    let error = match (&r.error, r.status) {
        (Some(e), _) => Some(e.clone()),
        (None, Status::Partial) => Some(format!(
            "{} of {} tiles failed",
            progress.failed, r.tile_count
        )),
        _ => None,
    };
    if let Some(e) = error {
        obj.insert("error".into(), json!(e));
    }
    Value::Object(obj)
}

#[cfg(test)]
#[path = "v2_tests.rs"]
mod tests;
