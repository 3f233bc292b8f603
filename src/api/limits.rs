//! The documented limits of a batch request, checked at create (and PUT) before anything
//! is stored. Every refusal names the limit and its value, so a client knows what to change
//! and an operator knows which `tessera serve --max-...` flag raises it.
//!
//! Why these bounds exist: a request costs the daemon memory and database space in
//! proportion to its tiles, its tile size and its stored body, and every list page echoes
//! the body. Unbounded inputs let one tenant take the daemon down for all (a whole-world
//! request at 10 m is 5.7 M tiles; a 32767 px buffer is a 66 k px square tile).
//!
//! Pure: no I/O. The raw-body checks run before the body is parsed into geometry, so an
//! oversized AOI is refused before any work proportional to it is done.

use serde_json::{Map, Value};

/// Operator-configurable limits. `Default` gives the documented defaults (README "Limits").
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Tiles one request may cover (estimated at create from the grid cells).
    pub max_tiles: u64,
    /// Area of the AOI in km² (spherical approximation, holes subtracted).
    pub max_area_km2: f64,
    /// `tilingGrid.bufferX` / `bufferY`, in pixels.
    pub max_buffer_px: u32,
    /// Width or height of one output tile in pixels, buffers included.
    pub max_tile_side_px: u64,
    /// Positions in `processRequest.input.bounds.geometry`, all rings together.
    pub max_aoi_vertices: usize,
    /// UTF-8 bytes of `processRequest.evalscript`.
    pub max_evalscript_bytes: usize,
    /// UTF-8 bytes of `description` (at create and at PUT).
    pub max_description_bytes: usize,
    /// Entries of `processRequest.output.responses`.
    pub max_outputs: usize,
    /// Largest `count` a list call is served with (a larger one is capped, as on the
    /// hosted service).
    pub max_list_count: u64,
    /// Bytes of stored request bodies one list page may carry; a page stops early (with a
    /// `nextToken`) when the next item would exceed it, but always holds at least one item.
    pub max_page_bytes: usize,
    /// Failed token requests (wrong secret) per client id at `/oauth/token`: guessing
    /// gets 429s, while a client that knows its secret is never slowed down.
    pub token_failure_rate: Rate,
    /// Creates per client (`POST /api/v1/batch/process`).
    pub create_rate: Rate,
}

/// A token-bucket rate: `burst` calls at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl Rate {
    /// Parses `N/s`, `N/min` or `N/h`, with an optional `,burst=B` (default: one
    /// second's worth, at least 1).
    pub fn parse(text: &str) -> Result<Rate, String> {
        let bad = || format!("'{text}' is not a rate like 10/s, 600/min or 5/s,burst=20");
        let (rate, burst) = match text.split_once(",burst=") {
            Some((r, b)) => (r, Some(b.trim().parse::<f64>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let (n, unit) = rate.trim().split_once('/').ok_or_else(bad)?;
        let n: f64 = n.trim().parse().map_err(|_| bad())?;
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1.0,
            "min" | "minute" => 60.0,
            "h" | "hour" => 3600.0,
            _ => return Err(bad()),
        };
        let per_second = n / secs;
        let burst = burst.unwrap_or(per_second.max(1.0));
        if !(per_second.is_finite() && per_second > 0.0 && burst.is_finite() && burst >= 1.0) {
            return Err(bad());
        }
        Ok(Rate { per_second, burst })
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // 100 000 grid-1 tiles is 10 M km² at 10 m: a continent. Analysis of that many
            // tiles stays well under 300 MB.
            max_tiles: 100_000,
            max_area_km2: 10_000_000.0,
            // int16 on the wire; 1000 px each side already doubles a grid-1 10 m tile.
            max_buffer_px: 1_000,
            // Grid 3 at 0.0001° is 10 000 px, the largest tile the hosted grids define.
            max_tile_side_px: 12_000,
            // The 8 MiB body limit allows roughly 300 000 positions anyway.
            max_aoi_vertices: 200_000,
            // Room for a precompiled WebAssembly module carried as base64.
            max_evalscript_bytes: 2 << 20,
            max_description_bytes: 16 << 10,
            max_outputs: 32,
            max_list_count: 1_000,
            max_page_bytes: 16 << 20,
            // 10 wrong secrets at once, then one every 2 s.
            token_failure_rate: Rate {
                per_second: 0.5,
                burst: 10.0,
            },
            create_rate: Rate {
                per_second: 20.0,
                burst: 100.0,
            },
        }
    }
}

/// A refused request: which limit, what it is, and what the request asked for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitError {
    #[error("{what} exceeds the limit {name} = {limit} (got {got}){hint}")]
    Exceeded {
        name: &'static str,
        what: &'static str,
        limit: String,
        got: String,
        hint: &'static str,
    },
    #[error("{0}")]
    Invalid(String),
}

fn exceeded(
    name: &'static str,
    what: &'static str,
    limit: impl ToString,
    got: impl ToString,
    hint: &'static str,
) -> LimitError {
    LimitError::Exceeded {
        name,
        what,
        limit: limit.to_string(),
        got: got.to_string(),
        hint,
    }
}

/// Counts the positions of a GeoJSON geometry's `coordinates` without building anything
/// (Polygon: rings of positions; MultiPolygon: polygons of rings). Stops counting once
/// `stop_at` is passed, so a huge array costs no more than the limit to look at.
fn count_positions(coords: &Value, stop_at: usize) -> usize {
    fn walk(v: &Value, n: &mut usize, stop_at: usize) {
        let Some(items) = v.as_array() else { return };
        // A position is an array whose first element is a number.
        if items.first().is_some_and(Value::is_number) {
            *n += 1;
            return;
        }
        for item in items {
            if *n > stop_at {
                return;
            }
            walk(item, n, stop_at);
        }
    }
    let mut n = 0;
    walk(coords, &mut n, stop_at);
    n
}

/// A string that must not carry control characters (NUL, newline...): paths and names
/// end up in file names, logs and object keys.
fn check_no_control(what: &str, s: &str) -> Result<(), LimitError> {
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(LimitError::Invalid(format!(
            "{what} contains a control character (U+{:04X}); it is not allowed in paths",
            c as u32
        )));
    }
    Ok(())
}

/// `description`: absent, null, or a string within the limit.
pub fn check_description(description: Option<&Value>, limits: &Limits) -> Result<(), LimitError> {
    match description {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s.len() > limits.max_description_bytes => Err(exceeded(
            "max_description_bytes",
            "description",
            limits.max_description_bytes,
            format!("{} bytes", s.len()),
            "",
        )),
        Some(Value::String(_)) => Ok(()),
        Some(other) => Err(LimitError::Invalid(format!(
            "description must be a string, got {}",
            kind_of(other)
        ))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// JSON pointer lookup on an object body.
fn at<'a>(body: &'a Map<String, Value>, pointer: &str) -> Option<&'a Value> {
    let rest = pointer.strip_prefix('/')?;
    match rest.split_once('/') {
        Some((first, tail)) => body.get(first)?.pointer(&format!("/{tail}")),
        None => body.get(rest),
    }
}

/// Checks a normalised create body before it is parsed: sizes that cost work or memory
/// in proportion to themselves (AOI positions, evalscript, description, outputs, buffers)
/// and the characters of the output location.
pub fn check_body(body: &Map<String, Value>, limits: &Limits) -> Result<(), LimitError> {
    check_description(body.get("description"), limits)?;
    if let Some(script) = body
        .get("processRequest")
        .and_then(|p| p.get("evalscript"))
        .and_then(Value::as_str)
    {
        if script.len() > limits.max_evalscript_bytes {
            return Err(exceeded(
                "max_evalscript_bytes",
                "processRequest.evalscript",
                limits.max_evalscript_bytes,
                format!("{} bytes", script.len()),
                "",
            ));
        }
    }
    if let Some(coords) = at(body, "/processRequest/input/bounds/geometry/coordinates") {
        let n = count_positions(coords, limits.max_aoi_vertices);
        if n > limits.max_aoi_vertices {
            return Err(exceeded(
                "max_aoi_vertices",
                "the AOI geometry's position count",
                limits.max_aoi_vertices,
                if n > limits.max_aoi_vertices + 1 {
                    n.to_string()
                } else {
                    format!("more than {}", limits.max_aoi_vertices)
                },
                "; simplify the geometry",
            ));
        }
    }
    if let Some(Value::Array(responses)) = at(body, "/processRequest/output/responses") {
        if responses.len() > limits.max_outputs {
            return Err(exceeded(
                "max_outputs",
                "processRequest.output.responses",
                limits.max_outputs,
                responses.len(),
                "",
            ));
        }
    }
    for key in ["bufferX", "bufferY"] {
        if let Some(b) = body
            .get("tilingGrid")
            .and_then(|t| t.get(key))
            .and_then(Value::as_i64)
        {
            if b > limits.max_buffer_px as i64 {
                return Err(LimitError::Exceeded {
                    name: "max_buffer_px",
                    what: if key == "bufferX" {
                        "tilingGrid.bufferX"
                    } else {
                        "tilingGrid.bufferY"
                    },
                    limit: limits.max_buffer_px.to_string(),
                    got: b.to_string(),
                    hint: "",
                });
            }
        }
    }
    for (what, pointer) in [
        ("output.defaultTilePath", "/output/defaultTilePath"),
        ("bucketName", "/bucketName"),
    ] {
        if let Some(s) = at(body, pointer).and_then(Value::as_str) {
            check_no_control(what, s)?;
        }
    }
    if let Some(Value::Array(responses)) = at(body, "/processRequest/output/responses") {
        for r in responses {
            if let Some(id) = r.get("identifier").and_then(Value::as_str) {
                check_no_control("an output identifier", id)?;
            }
        }
    }
    Ok(())
}

/// What the create path knows about a parsed request, for the checks that need geometry.
/// Checked before the tiles are counted, since counting costs time in proportion to them.
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    pub area_km2: f64,
    /// Output tile width and height in pixels, buffers included.
    pub tile_px: (u64, u64),
}

/// Checks the area and tile size of a parsed request.
pub fn check_footprint(f: &Footprint, limits: &Limits) -> Result<(), LimitError> {
    if f.area_km2 > limits.max_area_km2 {
        return Err(exceeded(
            "max_area_km2",
            "the AOI's area",
            format!("{} km²", limits.max_area_km2),
            format!("{:.0} km²", f.area_km2),
            "; split the area into several requests",
        ));
    }
    let side = f.tile_px.0.max(f.tile_px.1);
    if side > limits.max_tile_side_px {
        return Err(exceeded(
            "max_tile_side_px",
            "the tile size in pixels (buffers included)",
            limits.max_tile_side_px,
            format!("{} x {}", f.tile_px.0, f.tile_px.1),
            "; use a coarser resolution or a smaller buffer",
        ));
    }
    Ok(())
}

/// Checks the (estimated) number of tiles of a request.
pub fn check_tiles(tiles: u64, limits: &Limits) -> Result<(), LimitError> {
    if tiles > limits.max_tiles {
        return Err(exceeded(
            "max_tiles",
            "the number of tiles",
            limits.max_tiles,
            if tiles == limits.max_tiles.saturating_add(1) {
                format!("more than {}", limits.max_tiles)
            } else {
                tiles.to_string()
            },
            "; split the area into several requests or use a coarser grid",
        ));
    }
    Ok(())
}

/// Parses a list `viewtoken`: a non-negative offset small enough for SQLite's signed
/// 64-bit OFFSET (a larger one would wrap to -1, which SQLite reads as "no offset" and so
/// serves the first page again).
pub fn parse_viewtoken(token: &str) -> Result<u64, LimitError> {
    token
        .parse::<u64>()
        .ok()
        .filter(|t| *t <= i64::MAX as u64)
        .ok_or_else(|| LimitError::Invalid(format!("invalid viewtoken '{token}'")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn name_of(e: LimitError) -> &'static str {
        match e {
            LimitError::Exceeded { name, .. } => name,
            LimitError::Invalid(_) => "invalid",
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let l = Limits::default();
        assert_eq!(l.max_tiles, 100_000);
        assert_eq!(l.max_buffer_px, 1000);
        assert!(l.max_tile_side_px >= 10_000, "grid 3 at 0.0001° must fit");
        assert_eq!(l.max_evalscript_bytes, 2 * 1024 * 1024);
    }

    #[test]
    fn positions_are_counted_in_polygons_and_multipolygons() {
        let poly = json!([
            [[0, 0], [1, 0], [1, 1], [0, 0]],
            [[0.1, 0.1], [0.2, 0.1], [0.2, 0.2]]
        ]);
        assert_eq!(count_positions(&poly, 100), 7);
        let multi = json!([
            [[[0, 0], [1, 0], [1, 1], [0, 0]]],
            [[[5, 5], [6, 5], [6, 6]]]
        ]);
        assert_eq!(count_positions(&multi, 100), 7);
        assert_eq!(count_positions(&json!("x"), 100), 0);
        // Counting stops soon after the limit.
        let big: Vec<Value> = (0..10_000).map(|i| json!([i, 0])).collect();
        assert!(count_positions(&json!([big]), 10) <= 12);
    }

    #[test]
    fn vertices_over_the_limit_are_refused_naming_it() {
        let l = Limits {
            max_aoi_vertices: 4,
            ..Limits::default()
        };
        let ring = |n: usize| -> Value {
            Value::Array(
                (0..n)
                    .map(|i| json!([i as f64 * 0.01, (i % 2) as f64]))
                    .collect(),
            )
        };
        let b = |n| {
            body(json!({"processRequest": {"input": {"bounds": {"geometry": {
                "type": "Polygon", "coordinates": [ring(n)]}}}}}))
        };
        assert!(check_body(&b(4), &l).is_ok());
        let e = check_body(&b(5), &l).unwrap_err();
        assert!(e.to_string().contains("max_aoi_vertices = 4"), "{e}");
    }

    #[test]
    fn evalscript_description_outputs_and_buffers_are_bounded() {
        let l = Limits {
            max_evalscript_bytes: 10,
            max_description_bytes: 5,
            max_outputs: 1,
            max_buffer_px: 100,
            ..Limits::default()
        };
        let e = check_body(
            &body(json!({"processRequest": {"evalscript": "x".repeat(11)}})),
            &l,
        );
        assert_eq!(name_of(e.unwrap_err()), "max_evalscript_bytes");
        let e = check_body(&body(json!({"description": "abcdef"})), &l);
        assert_eq!(name_of(e.unwrap_err()), "max_description_bytes");
        assert!(check_body(&body(json!({"description": "abcde"})), &l).is_ok());
        let e = check_body(
            &body(json!({"processRequest": {"output": {"responses": [{}, {}]}}})),
            &l,
        );
        assert_eq!(name_of(e.unwrap_err()), "max_outputs");
        for key in ["bufferX", "bufferY"] {
            let e = check_body(&body(json!({"tilingGrid": {key: 32767}})), &l).unwrap_err();
            assert_eq!(name_of(e.clone()), "max_buffer_px");
            assert!(e.to_string().contains(key), "{e}");
            assert!(check_body(&body(json!({"tilingGrid": {key: 100}})), &l).is_ok());
        }
    }

    #[test]
    fn description_must_be_a_string() {
        let l = Limits::default();
        for bad in [json!({"a": 1}), json!([1]), json!(3), json!(true)] {
            let e = check_description(Some(&bad), &l).unwrap_err();
            assert!(e.to_string().contains("description must be a string"));
        }
        assert!(check_description(Some(&Value::Null), &l).is_ok());
        assert!(check_description(None, &l).is_ok());
    }

    #[test]
    fn control_characters_in_locations_are_refused() {
        let l = Limits::default();
        for bad in ["/tmp/a\0b/<tileName>", "/tmp/a\nb", "x\rb", "\u{7f}"] {
            let e = check_body(&body(json!({"output": {"defaultTilePath": bad}})), &l);
            assert_eq!(name_of(e.unwrap_err()), "invalid", "{bad:?}");
            let e = check_body(&body(json!({"bucketName": bad})), &l);
            assert_eq!(name_of(e.unwrap_err()), "invalid", "{bad:?}");
        }
        let e = check_body(
            &body(json!({"processRequest": {"output": {"responses": [{"identifier": "a\nb"}]}}})),
            &l,
        );
        assert_eq!(name_of(e.unwrap_err()), "invalid");
        assert!(check_body(
            &body(json!({"output": {"defaultTilePath": "s3://b/<tileName>"}})),
            &l
        )
        .is_ok());
    }

    #[test]
    fn footprint_checks_name_each_limit() {
        let l = Limits::default();
        let ok = Footprint {
            area_km2: 100.0,
            tile_px: (1000, 1000),
        };
        assert!(check_footprint(&ok, &l).is_ok());
        let cases = [
            (
                Footprint {
                    area_km2: 5.1e8,
                    ..ok
                },
                "max_area_km2",
            ),
            (
                Footprint {
                    tile_px: (66_534, 66_534),
                    ..ok
                },
                "max_tile_side_px",
            ),
            (
                Footprint {
                    tile_px: (1000, 12_001),
                    ..ok
                },
                "max_tile_side_px",
            ),
        ];
        for (f, name) in cases {
            let e = check_footprint(&f, &l).unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
        }
        assert!(check_footprint(
            &Footprint {
                tile_px: (12_000, 12_000),
                ..ok
            },
            &l
        )
        .is_ok());
        assert!(check_tiles(100_000, &l).is_ok());
        let e = check_tiles(5_711_622, &l).unwrap_err();
        assert!(e.to_string().contains("max_tiles = 100000"), "{e}");
    }

    #[test]
    fn rates_parse() {
        assert_eq!(
            Rate::parse("10/s").unwrap(),
            Rate {
                per_second: 10.0,
                burst: 10.0
            }
        );
        assert_eq!(
            Rate::parse("60/min,burst=5").unwrap(),
            Rate {
                per_second: 1.0,
                burst: 5.0
            }
        );
        assert_eq!(Rate::parse("36/h").unwrap().burst, 1.0);
        for bad in [
            "",
            "10",
            "0/s",
            "-1/s",
            "x/s",
            "10/day",
            "1/s,burst=0",
            "inf/s",
        ] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn viewtokens_never_wrap() {
        assert_eq!(parse_viewtoken("0").unwrap(), 0);
        assert_eq!(
            parse_viewtoken("9223372036854775807").unwrap(),
            i64::MAX as u64
        );
        for bad in ["18446744073709551615", "9223372036854775808", "-1", "x", ""] {
            assert!(parse_viewtoken(bad).is_err(), "{bad}");
        }
    }
}
