//! GeoJSON in and out for `tessera grid tiles`: read an AOI file, write the tiles so they
//! can be checked in a GIS. Pure functions over `serde_json::Value`; the CLI does the I/O.

use super::aoi::{parse_bounds, Aoi};
use super::tiling::{tiles, tiles_iter, Tile, TilingSpec};
use super::GridError;
use serde_json::{json, Value};

fn invalid(msg: impl Into<String>) -> GridError {
    GridError::InvalidAoi(msg.into())
}

/// Polygon coordinate arrays (each a list of rings) of a Polygon / MultiPolygon geometry.
fn polygon_coords(geometry: &Value, out: &mut Vec<Value>) -> Result<(), GridError> {
    let coords = geometry.get("coordinates").cloned().unwrap_or(Value::Null);
    match geometry.get("type").and_then(Value::as_str) {
        Some("Polygon") => out.push(coords),
        Some("MultiPolygon") => match coords {
            Value::Array(polygons) => out.extend(polygons),
            _ => return Err(invalid("MultiPolygon coordinates must be an array")),
        },
        Some("GeometryCollection") => {
            let members = geometry
                .get("geometries")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid("GeometryCollection needs a geometries array"))?;
            for g in members {
                polygon_coords(g, out)?;
            }
        }
        other => {
            return Err(invalid(format!(
                "only Polygon and MultiPolygon geometries describe an area, got {other:?}"
            )))
        }
    }
    Ok(())
}

/// An AOI from a GeoJSON document: a Polygon/MultiPolygon geometry, a Feature or a
/// FeatureCollection (the union of its features). Coordinates are CRS84 (RFC 7946) unless
/// the document carries the pre-RFC `"crs": {"type": "name", "properties": {"name": ...}}`
/// member, which is honoured so UTM files from older tools work.
pub fn aoi_from_geojson(doc: &Value) -> Result<Aoi, GridError> {
    let mut polygons = Vec::new();
    match doc.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => {
            let features = doc
                .get("features")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid("FeatureCollection needs a features array"))?;
            for f in features {
                polygon_coords(f.get("geometry").unwrap_or(&Value::Null), &mut polygons)?;
            }
        }
        Some("Feature") => {
            polygon_coords(doc.get("geometry").unwrap_or(&Value::Null), &mut polygons)?
        }
        _ => polygon_coords(doc, &mut polygons)?,
    }
    if polygons.is_empty() {
        return Err(invalid("the GeoJSON document holds no polygon"));
    }
    let mut bounds = json!({"geometry": {"type": "MultiPolygon", "coordinates": polygons}});
    if let Some(name) = doc.pointer("/crs/properties/name") {
        bounds["properties"] = json!({ "crs": name });
    }
    parse_bounds(&bounds)
}

/// The tiles as a GeoJSON FeatureCollection: each feature is the WGS84 footprint of the
/// unbuffered tile, with the tile's id, name, CRS, bounds in that CRS, buffered bounds,
/// upper-left origin and raster size as properties.
pub fn tiles_feature_collection(tiles: &[Tile], spec: &TilingSpec) -> Result<Value, GridError> {
    let (width, height) = (spec.width_px()?, spec.height_px()?);
    let features: Vec<Value> = tiles
        .iter()
        .map(|t| tile_feature(t, spec, width, height))
        .collect();
    Ok(json!({"type": "FeatureCollection", "features": features}))
}

/// One tile as a GeoJSON Feature (see [`tiles_feature_collection`]).
fn tile_feature(t: &Tile, spec: &TilingSpec, width: u32, height: u32) -> Value {
    json!({
        "type": "Feature",
        "id": t.id,
        "geometry": t.geometry_geojson(),
        "properties": {
            "id": t.id,
            "name": t.name,
            "epsg": t.epsg,
            "bounds": t.bounds(),
            "bufferedBounds": t.buffered_bounds(spec),
            "origin": t.origin(),
            "width": width,
            "height": height,
        }
    })
}

/// `tessera grid tiles`: the AOI document -> the FeatureCollection of its tiles.
pub fn tiles_geojson(aoi_doc: &Value, spec: &TilingSpec) -> Result<Value, GridError> {
    let aoi = aoi_from_geojson(aoi_doc)?;
    tiles_feature_collection(&tiles(&aoi, spec)?, spec)
}

/// Why writing the tiles' GeoJSON stopped.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Grid(#[from] GridError),
    #[error("writing the GeoJSON: {0}")]
    Io(#[from] std::io::Error),
}

/// [`tiles_geojson`] streamed: writes the same bytes as `serde_json::to_writer` of the
/// whole FeatureCollection (keys in serde_json's sorted order, `features` first), but
/// builds and writes one tile at a time, so a continent of tiles costs the memory of its
/// cells, not of a JSON tree (231,001 Europe tiles: 1.85 GB as a tree). Returns the count.
pub fn write_tiles_geojson(
    aoi_doc: &Value,
    spec: &TilingSpec,
    mut out: impl std::io::Write,
) -> Result<usize, WriteError> {
    let aoi = aoi_from_geojson(aoi_doc)?;
    let (width, height) = (spec.width_px()?, spec.height_px()?);
    let tiles = tiles_iter(&aoi, spec, usize::MAX / 4)?;
    let count = tiles.len();
    out.write_all(b"{\"features\":[")?;
    for (i, t) in tiles.enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut out, &tile_feature(&t, spec, width, height))
            .map_err(std::io::Error::from)?;
    }
    out.write_all(b"],\"type\":\"FeatureCollection\"}")?;
    out.flush()?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_collection_of_31uds_7_2() {
        // A tiny square inside 31UDS_7_2 (tiling-grids.md §4), as a FeatureCollection.
        let doc = json!({"type": "FeatureCollection", "features": [{"type": "Feature",
            "properties": {}, "geometry": {"type": "Polygon", "coordinates":
            [[[2.6399, 51.2249], [2.6401, 51.2249], [2.6401, 51.2251], [2.6399, 51.2251],
              [2.6399, 51.2249]]]}}]});
        let spec = TilingSpec {
            grid_id: 1,
            resolution: 10.0,
            buffer_x: 2,
            buffer_y: 1,
        };
        let out = tiles_geojson(&doc, &spec).unwrap();
        assert_eq!(out["type"], "FeatureCollection");
        let features = out["features"].as_array().unwrap();
        assert_eq!(features.len(), 1);
        let p = &features[0]["properties"];
        assert_eq!(p["name"], "31UDS_7_2");
        assert_eq!(p["epsg"], 32631);
        assert_eq!(
            p["bounds"],
            json!([470000.0, 5670000.0, 480000.0, 5680000.0])
        );
        assert_eq!(
            p["bufferedBounds"],
            json!([469980.0, 5669990.0, 480020.0, 5680010.0])
        );
        assert_eq!(p["origin"], json!([470000.0, 5680000.0]));
        assert_eq!(
            (p["width"].clone(), p["height"].clone()),
            (json!(1004), json!(1002))
        );
        assert_eq!(features[0]["geometry"]["type"], "Polygon");
    }

    #[test]
    fn geometry_feature_and_legacy_crs_inputs() {
        let square = json!({"type": "Polygon", "coordinates":
            [[[470100, 5670100], [470200, 5670100], [470200, 5670200], [470100, 5670100]]]});
        let utm = json!({"type": "Feature", "geometry": square,
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32631"}}});
        // Without the crs member the same numbers are not valid longitudes.
        assert!(aoi_from_geojson(&square).is_err());
        let out = tiles_geojson(&utm, &TilingSpec::new(1, 10.0)).unwrap();
        assert_eq!(out["features"][0]["properties"]["name"], "31UDS_7_2");
    }

    #[test]
    fn streamed_output_is_byte_identical_to_the_tree() {
        let utm_two_zones = json!({"type": "Polygon", "coordinates":
            [[[11.7, 45.9], [12.4, 45.9], [12.4, 46.3], [11.7, 46.3], [11.7, 45.9]]]});
        let antimeridian = json!({"type": "Polygon", "coordinates":
            [[[179.5, -17.0], [180.5, -17.0], [180.5, -16.2], [179.5, -16.2], [179.5, -17.0]]]});
        for (doc, grid, res, buffer) in [
            (&utm_two_zones, 1, 10.0, 0),
            (&utm_two_zones, 0, 20.0, 5),
            (&utm_two_zones, 3, 0.0001, 0),
            (&antimeridian, 2, 60.0, 3),
        ] {
            let spec = TilingSpec {
                grid_id: grid,
                resolution: res,
                buffer_x: buffer,
                buffer_y: buffer,
            };
            let tree = serde_json::to_string(&tiles_geojson(doc, &spec).unwrap()).unwrap();
            let mut streamed = Vec::new();
            let n = write_tiles_geojson(doc, &spec, &mut streamed).unwrap();
            assert!(n > 0, "grid {grid}");
            assert_eq!(String::from_utf8(streamed).unwrap(), tree, "grid {grid}");
        }
    }

    #[test]
    fn non_areal_documents_are_rejected() {
        for doc in [
            json!({"type": "Point", "coordinates": [1, 2]}),
            json!({"type": "FeatureCollection", "features": []}),
            json!({"type": "Feature", "geometry": null}),
            json!([1, 2]),
        ] {
            assert!(
                matches!(aoi_from_geojson(&doc), Err(GridError::InvalidAoi(_))),
                "{doc}"
            );
        }
    }
}
