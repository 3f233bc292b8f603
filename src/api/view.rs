//! Renders stored records as the JSON the clients read (batch-api.md §5-§8, §13.2).

use serde_json::{json, Map, Value};

use crate::engine::lifecycle::{Status, TileStatus, UserAction};
use crate::grid::GridDef;

/// A batch request as stored.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub id: String,
    pub client_id: String,
    pub created: String,
    /// The normalised create body (echoed members only).
    pub body: Map<String, Value>,
    pub status: Status,
    pub user_action: UserAction,
    pub user_action_updated: Option<String>,
    pub start_when_analysed: bool,
    pub cancel_when_analysed: bool,
    pub tile_count: i64,
    pub tile_width_px: i64,
    pub tile_height_px: i64,
    pub value_estimate: Option<f64>,
    pub error: Option<String>,
}

/// A tile as stored.
#[derive(Debug, Clone)]
pub struct TileRecord {
    pub request_id: String,
    pub id: i64,
    /// Position in the request's tile list: the pagination key.
    pub seq: i64,
    pub name: String,
    pub status: TileStatus,
    pub attempts: u32,
    pub cost: f64,
    pub epsg: u32,
    pub x_min: f64,
    pub y_min: f64,
    pub x_max: f64,
    pub y_max: f64,
    /// WGS84 ring of the unbuffered tile, as JSON text.
    pub geometry: String,
    pub error: Option<String>,
}

/// `BatchProcessRequest`: the echoed create body plus the service's fields. A request
/// created through v2 shows its v1 equivalent (`tilingGrid`, `output.defaultTilePath`), or
/// its v2 body where v1 has no equivalent (a GeoPackage input).
pub fn request_json(r: &RequestRecord) -> Value {
    let mut obj = if super::v2::is_v2_body(&r.body) {
        super::v2::to_v1_body(&r.body)
            .and_then(|b| super::normalise_create(&Value::Object(b)))
            .unwrap_or_else(|_| r.body.clone())
    } else {
        r.body.clone()
    };
    obj.insert("id".into(), json!(r.id));
    obj.insert("userId".into(), json!(r.client_id));
    obj.insert("created".into(), json!(r.created));
    obj.insert("status".into(), json!(r.status.as_str()));
    obj.insert("userAction".into(), json!(r.user_action.as_str()));
    if let Some(t) = &r.user_action_updated {
        obj.insert("userActionUpdated".into(), json!(t));
    }
    obj.insert("tileCount".into(), json!(r.tile_count));
    obj.insert("tileWidthPx".into(), json!(r.tile_width_px));
    obj.insert("tileHeightPx".into(), json!(r.tile_height_px));
    if let Some(v) = r.value_estimate {
        obj.insert("valueEstimate".into(), json!(v));
    }
    if let Some(e) = &r.error {
        obj.insert("error".into(), json!(e));
    }
    Value::Object(obj)
}

/// `BatchTile`, with `origin` as the *upper-left* corner of the unbuffered tile: that is
/// how `BatchSplitter` reads it, whatever the OpenAPI text says. Two members are Tessera's
/// own: `attempts` (processing attempts so far) and `error` (the last failure's text, while
/// the tile is FAILED), so a user can see why a tile failed; the clients ignore unknown keys.
pub fn tile_json(t: &TileRecord) -> Value {
    let geometry: Value = serde_json::from_str(&t.geometry).unwrap_or(Value::Null);
    let mut tile = json!({
        "id": t.id,
        "requestId": t.request_id,
        "name": t.name,
        "status": t.status.as_str(),
        "cost": t.cost,
        "attempts": t.attempts,
        "origin": {
            "type": "Point",
            "coordinates": [t.x_min, t.y_max],
            "crs": {"type": "name", "properties": {"name": format!("urn:ogc:def:crs:EPSG::{}", t.epsg)}}
        },
        "geometry": {"type": "Polygon", "coordinates": [geometry]},
    });
    if let (TileStatus::Failed, Some(e)) = (t.status, &t.error) {
        tile["error"] = json!(e);
    }
    tile
}

/// `TilingGridDescriptor`.
pub fn grid_json(g: &GridDef) -> Value {
    g.descriptor()
}

/// Tokens of one page: `next` is present only when another page exists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListLinks {
    pub current: Option<String>,
    pub next: Option<String>,
}

/// `{"data": [...], "links": {...}}`; `links` is always present, `nextToken` only when
/// there is another page (the client stops on its absence).
pub fn list_json(data: Vec<Value>, links: &ListLinks) -> Value {
    let mut l = Map::new();
    if let Some(c) = &links.current {
        l.insert("currentToken".into(), json!(c));
    }
    if let Some(n) = &links.next {
        l.insert("nextToken".into(), json!(n));
    }
    json!({"data": data, "links": l})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(status: TileStatus, attempts: u32, error: Option<&str>) -> TileRecord {
        TileRecord {
            request_id: "r".into(),
            id: 7,
            seq: 0,
            name: "33TWM_1_2".into(),
            status,
            attempts,
            cost: 0.0,
            epsg: 32633,
            x_min: 500000.0,
            y_min: 5090000.0,
            x_max: 510000.0,
            y_max: 5100000.0,
            geometry: "[[15.0,46.0],[15.1,46.0],[15.0,46.0]]".into(),
            error: error.map(String::from),
        }
    }

    #[test]
    fn tile_json_says_why_a_failed_tile_failed() {
        let failed = tile_json(&tile(
            TileStatus::Failed,
            3,
            Some("writing x: Not a directory"),
        ));
        assert_eq!(failed["attempts"], 3);
        assert_eq!(failed["error"], "writing x: Not a directory");
        assert_eq!(
            failed["origin"]["coordinates"],
            json!([500000.0, 5100000.0])
        );
        // A tile that failed once and then went through keeps no stale error.
        let retried = tile_json(&tile(TileStatus::Processed, 2, Some("transient")));
        assert_eq!(retried["attempts"], 2);
        assert!(retried.get("error").is_none());
        assert!(tile_json(&tile(TileStatus::Pending, 0, None))
            .get("error")
            .is_none());
    }
}
