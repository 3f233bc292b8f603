//! A static catalog of scenes (STAC-like items, one COG per band) and the pure selection
//! logic on it: which items touch a tile, pass the filter, and in what mosaicking order.

use serde::Deserialize;

use super::DataError;

/// One scene: a date, a cloud cover, a footprint and one file per band.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Item {
    pub id: String,
    pub datetime: String,
    /// Days since 1970-01-01 of `datetime`.
    pub day: i64,
    pub cloud_cover: f64,
    pub epsg: u32,
    /// Footprint in the item's CRS: x_min, y_min, x_max, y_max.
    pub proj_bbox: [f64; 4],
    /// Footprint in WGS84: west, south, east, north.
    pub bbox: [f64; 4],
    /// Band name -> file location (absolute, after resolving against the catalog).
    pub assets: Vec<(String, String)>,
    /// Added to the file's DN before scaling when harmonizeValues is on: -1000 for
    /// Sentinel-2 from processing baseline 04.00 on, 0 otherwise (see `stac::dn_offset`).
    pub dn_offset: f64,
}

impl Item {
    pub fn asset(&self, band: &str) -> Option<&str> {
        self.assets
            .iter()
            .find(|(b, _)| b == band)
            .map(|(_, h)| h.as_str())
    }
}

#[derive(Deserialize)]
struct RawCatalog {
    features: Vec<RawItem>,
}

#[derive(Deserialize)]
struct RawItem {
    id: String,
    bbox: [f64; 4],
    properties: RawProps,
    assets: std::collections::BTreeMap<String, RawAsset>,
}

#[derive(Deserialize)]
struct RawProps {
    datetime: String,
    #[serde(rename = "eo:cloud_cover", default)]
    cloud_cover: f64,
    #[serde(rename = "proj:epsg")]
    epsg: u32,
    #[serde(rename = "proj:bbox")]
    proj_bbox: [f64; 4],
    #[serde(rename = "s2:boa_add_offset")]
    boa_add_offset: Option<f64>,
    #[serde(rename = "s2:processing_baseline")]
    processing_baseline: Option<String>,
}

#[derive(Deserialize)]
struct RawAsset {
    href: String,
}

/// Parses a catalog (a GeoJSON FeatureCollection of STAC-like items); relative hrefs are
/// resolved against `base` (the catalog's folder).
pub fn parse(json: &str, base: &str) -> Result<Vec<Item>, DataError> {
    let raw: RawCatalog =
        serde_json::from_str(json).map_err(|e| DataError::Catalog(format!("{base}: {e}")))?;
    raw.features
        .into_iter()
        .map(|f| {
            let day = super::day_of(&f.properties.datetime).ok_or_else(|| {
                DataError::Catalog(format!(
                    "{}: bad datetime '{}'",
                    f.id, f.properties.datetime
                ))
            })?;
            let assets = f
                .assets
                .into_iter()
                .map(|(band, a)| {
                    let href = if a.href.contains("://") || a.href.starts_with('/') {
                        a.href
                    } else {
                        format!("{}/{}", base.trim_end_matches('/'), a.href)
                    };
                    (band, href)
                })
                .collect();
            Ok(Item {
                id: f.id,
                datetime: f.properties.datetime,
                day,
                cloud_cover: f.properties.cloud_cover,
                epsg: f.properties.epsg,
                proj_bbox: f.properties.proj_bbox,
                bbox: f.bbox,
                assets,
                dn_offset: super::stac::dn_offset(
                    f.properties.processing_baseline.as_deref(),
                    f.properties.boa_add_offset,
                    false,
                ),
            })
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MosaickingOrder {
    #[default]
    MostRecent,
    LeastRecent,
    LeastCC,
}

impl MosaickingOrder {
    pub fn parse(s: &str) -> Option<MosaickingOrder> {
        match s {
            "mostRecent" => Some(MosaickingOrder::MostRecent),
            "leastRecent" => Some(MosaickingOrder::LeastRecent),
            "leastCC" => Some(MosaickingOrder::LeastCC),
            _ => None,
        }
    }
}

/// Items whose WGS84 footprint intersects `lonlat_bbox`, dated within `from..=to` (days),
/// at most `max_cc` percent cloudy, sorted in mosaicking order (ties by id, so the order
/// is deterministic).
pub fn select(
    items: &[Item],
    lonlat_bbox: [f64; 4],
    from: i64,
    to: i64,
    max_cc: f64,
    order: MosaickingOrder,
) -> Vec<Item> {
    let mut out: Vec<Item> = items
        .iter()
        .filter(|i| {
            i.bbox[0] < lonlat_bbox[2]
                && i.bbox[2] > lonlat_bbox[0]
                && i.bbox[1] < lonlat_bbox[3]
                && i.bbox[3] > lonlat_bbox[1]
                && i.day >= from
                && i.day <= to
                && i.cloud_cover <= max_cc
        })
        .cloned()
        .collect();
    out.sort_by(|a, b| {
        let key = match order {
            MosaickingOrder::MostRecent => b.datetime.cmp(&a.datetime),
            MosaickingOrder::LeastRecent => a.datetime.cmp(&b.datetime),
            MosaickingOrder::LeastCC => a.cloud_cover.total_cmp(&b.cloud_cover),
        };
        key.then_with(|| a.id.cmp(&b.id))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, date: &str, cc: f64, west: f64) -> Item {
        Item {
            id: id.into(),
            datetime: format!("{date}T10:00:00Z"),
            day: super::super::day_of(&format!("{date}T10:00:00Z")).unwrap(),
            cloud_cover: cc,
            epsg: 32633,
            proj_bbox: [0.0; 4],
            bbox: [west, 46.0, west + 0.1, 46.1],
            assets: vec![],
            dn_offset: 0.0,
        }
    }

    #[test]
    fn selects_by_place_time_cloud_and_orders() {
        let items = vec![
            item("a", "2023-06-05", 10.0, 15.0),
            item("b", "2023-06-15", 50.0, 15.0),
            item("c", "2023-06-25", 5.0, 15.0),
            item("far", "2023-06-25", 0.0, 20.0),
        ];
        let bb = [15.05, 46.05, 15.06, 46.06];
        let from = super::super::day_of("2023-06-01T00:00:00Z").unwrap();
        let to = super::super::day_of("2023-06-30T00:00:00Z").unwrap();
        let ids = |v: Vec<Item>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(
            ids(select(
                &items,
                bb,
                from,
                to,
                100.0,
                MosaickingOrder::MostRecent
            )),
            ["c", "b", "a"]
        );
        assert_eq!(
            ids(select(
                &items,
                bb,
                from,
                to,
                100.0,
                MosaickingOrder::LeastRecent
            )),
            ["a", "b", "c"]
        );
        assert_eq!(
            ids(select(
                &items,
                bb,
                from,
                to,
                100.0,
                MosaickingOrder::LeastCC
            )),
            ["c", "a", "b"]
        );
        assert_eq!(
            ids(select(
                &items,
                bb,
                from,
                to,
                20.0,
                MosaickingOrder::MostRecent
            )),
            ["c", "a"]
        );
        assert_eq!(
            ids(select(
                &items,
                bb,
                from,
                from + 10,
                100.0,
                MosaickingOrder::MostRecent
            )),
            ["a"]
        );
    }

    #[test]
    fn relative_hrefs_resolve_against_the_catalog() {
        let json = r#"{"features":[{"id":"x","bbox":[1,2,3,4],"assets":{"B04":{"href":"x/B04.tif"},
          "B08":{"href":"s3://b/B08.tif"}},"properties":{"datetime":"2023-06-05T10:00:00Z",
          "eo:cloud_cover":3.5,"proj:epsg":32633,"proj:bbox":[0,0,10,10]}}]}"#;
        let items = parse(json, "/data/cat").unwrap();
        assert_eq!(items[0].asset("B04"), Some("/data/cat/x/B04.tif"));
        assert_eq!(items[0].asset("B08"), Some("s3://b/B08.tif"));
        assert_eq!(items[0].cloud_cover, 3.5);
        assert!(parse("{", "/x").is_err());
    }
}
