//! Sentinel-2 L2A/L1C from STAC: a STAC API (`POST /search`, the Earth Search layout) or
//! a static STAC catalog (catalog.json -> child collections -> items) on disk, over
//! http(s) or in a bucket. Items become [`Item`]s keyed by Sentinel Hub band names, so the
//! rest of `data` reads them like the bundled sample.
//!
//! The pure parts (search body, `next` links, item parsing, band-name mapping, the DN
//! offset rule) are separate from the fetching so they are tested without a network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};

use super::remote::{self, RemoteConfig};
use super::{DataError, Item};

/// Where a collection's items come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollectionSource {
    /// A STAC API root (e.g. `https://earth-search.aws.element84.com/v1`) and the STAC
    /// collection id to search.
    StacApi { url: String, collection: String },
    /// A static catalog's root document (`catalog.json`, path or URL); items are taken
    /// from the child collection whose id is `collection` (or from items whose
    /// `collection` field says so).
    StaticCatalog { url: String, collection: String },
}

/// Sentinel Hub band name -> the asset keys tried in order: Earth Search v1 names, then
/// the band name itself (Earth Search v0 and most static catalogs), then lower case.
pub fn asset_keys(band: &str) -> Vec<String> {
    let es = match band {
        "B01" => "coastal",
        "B02" => "blue",
        "B03" => "green",
        "B04" => "red",
        "B05" => "rededge1",
        "B06" => "rededge2",
        "B07" => "rededge3",
        "B08" => "nir",
        "B8A" => "nir08",
        "B09" => "nir09",
        "B10" => "cirrus",
        "B11" => "swir16",
        "B12" => "swir22",
        "SCL" => "scl",
        "AOT" => "aot",
        "WVP" => "wvp",
        _ => "",
    };
    let mut keys = Vec::new();
    if !es.is_empty() {
        keys.push(es.to_string());
    }
    keys.push(band.to_string());
    keys.push(band.to_lowercase());
    keys
}

/// The DN offset to add before scaling (harmonizeValues): 0 where the item says the
/// offset is already applied (`earthsearch:boa_offset_applied`), the item's own
/// `s2:boa_add_offset` / `s2:radio_add_offset` when given, else -1000 from processing
/// baseline 04.00 on (January 2022) and 0 before.
pub fn dn_offset(baseline: Option<&str>, offset: Option<f64>, already_applied: bool) -> f64 {
    if already_applied {
        return 0.0;
    }
    if let Some(o) = offset {
        return o;
    }
    match baseline.and_then(|b| b.trim().parse::<f64>().ok()) {
        Some(b) if b >= 4.0 => -1000.0,
        _ => 0.0,
    }
}

/// Calendar date `YYYY-MM-DD` of a day number (days since 1970-01-01).
pub fn civil_date(day: i64) -> String {
    // Howard Hinnant's days_from_civil inverse.
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// What a tile asks of a STAC API.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// west, south, east, north (WGS84).
    pub bbox: [f64; 4],
    pub from_day: Option<i64>,
    pub to_day: Option<i64>,
    pub max_cloud_coverage: f64,
}

/// The `POST /search` body: collections, bbox, datetime interval (whole days, open ends
/// as `..`), the cloud cover as a `query` (the extension Earth Search implements).
pub fn search_body(collection: &str, s: &Search, limit: u32) -> Value {
    let from = s
        .from_day
        .map(|d| format!("{}T00:00:00Z", civil_date(d)))
        .unwrap_or_else(|| "..".into());
    let to = s
        .to_day
        .map(|d| format!("{}T23:59:59Z", civil_date(d)))
        .unwrap_or_else(|| "..".into());
    let mut body = json!({
        "collections": [collection],
        "bbox": s.bbox,
        "datetime": format!("{from}/{to}"),
        "limit": limit,
    });
    if s.max_cloud_coverage < 100.0 {
        body["query"] = json!({"eo:cloud_cover": {"lte": s.max_cloud_coverage}});
    }
    body
}

/// The request for the next page, from a page's `next` link: `Some((url, Some(body)))`
/// for a POST link (its `body`, merged into the previous body when `merge` is true),
/// `Some((url, None))` for a GET link, `None` on the last page.
pub fn next_page(page: &Value, previous_body: &Value) -> Option<(String, Option<Value>)> {
    let link = page
        .get("links")?
        .as_array()?
        .iter()
        .find(|l| l.get("rel").and_then(Value::as_str) == Some("next"))?;
    let href = link.get("href")?.as_str()?.to_string();
    let method = link.get("method").and_then(Value::as_str).unwrap_or("GET");
    if !method.eq_ignore_ascii_case("POST") {
        return Some((href, None));
    }
    let merge = link.get("merge").and_then(Value::as_bool).unwrap_or(false);
    let body = match link.get("body") {
        Some(Value::Object(b)) if merge => {
            let mut out = previous_body.clone();
            if let Some(o) = out.as_object_mut() {
                for (k, v) in b {
                    o.insert(k.clone(), v.clone());
                }
            }
            out
        }
        Some(b) => b.clone(),
        None => previous_body.clone(),
    };
    Some((href, Some(body)))
}

fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

/// One STAC item (JSON) -> [`Item`] with assets keyed by the Sentinel Hub names in
/// `bands` that the item has; relative hrefs resolve against `base` (the item's own
/// location, or the page it came in).
pub fn parse_item(v: &Value, base: &str, bands: &[&str]) -> Result<Item, DataError> {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| DataError::Catalog(format!("{base}: an item has no id")))?
        .to_string();
    let bad = |what: &str| DataError::Catalog(format!("{base}: item {id}: {what}"));
    let props = v.get("properties").ok_or_else(|| bad("no properties"))?;
    let datetime = props
        .get("datetime")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no datetime"))?
        .to_string();
    let day = super::day_of(&datetime).ok_or_else(|| bad("bad datetime"))?;
    let bb: Vec<f64> = v
        .get("bbox")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let bbox = match bb.len() {
        4 => [bb[0], bb[1], bb[2], bb[3]],
        6 => [bb[0], bb[1], bb[3], bb[4]],
        _ => return Err(bad("bbox must have 4 or 6 numbers")),
    };
    let epsg = num(props.get("proj:epsg"))
        .map(|e| e as u32)
        .or_else(|| {
            props
                .get("proj:code")
                .and_then(Value::as_str)
                .and_then(|c| c.strip_prefix("EPSG:"))
                .and_then(|c| c.parse().ok())
        })
        .unwrap_or(0);
    let proj_bbox = props
        .get("proj:bbox")
        .and_then(Value::as_array)
        .filter(|a| a.len() == 4)
        .map(|a| {
            let f = |i: usize| a[i].as_f64().unwrap_or(0.0);
            [f(0), f(1), f(2), f(3)]
        })
        .unwrap_or([0.0; 4]);
    let offset = num(props.get("s2:boa_add_offset")).or(num(props.get("s2:radio_add_offset")));
    let applied = props
        .get("earthsearch:boa_offset_applied")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let baseline = props.get("s2:processing_baseline").and_then(Value::as_str);
    let assets_json = v.get("assets").and_then(Value::as_object);
    let mut assets = Vec::new();
    if let Some(a) = assets_json {
        for band in bands {
            let href = asset_keys(band)
                .iter()
                .find_map(|k| a.get(k).and_then(|x| x.get("href")).and_then(Value::as_str));
            if let Some(h) = href {
                assets.push((band.to_string(), remote::resolve(base, h)));
            }
        }
    }
    Ok(Item {
        id,
        datetime,
        day,
        cloud_cover: num(props.get("eo:cloud_cover")).unwrap_or(0.0),
        epsg,
        proj_bbox,
        bbox,
        assets,
        dn_offset: dn_offset(baseline, offset, applied),
    })
}

/// Pages followed at most (100 items each): a tile's search never needs more.
const MAX_PAGES: usize = 50;

fn parse_json(bytes: &[u8], location: &str) -> Result<Value, DataError> {
    serde_json::from_slice(bytes)
        .map_err(|e| DataError::Catalog(format!("{location}: not JSON: {e}")))
}

fn fetch_err(e: remote::RemoteError) -> DataError {
    DataError::Catalog(e.to_string())
}

/// Searches a STAC API (`<url>/search`), following `next` links.
pub fn search_items(
    api_url: &str,
    collection: &str,
    search: &Search,
    bands: &[&str],
    cfg: &RemoteConfig,
) -> Result<Vec<Item>, DataError> {
    let mut url = format!("{}/search", api_url.trim_end_matches('/'));
    let mut body = Some(search_body(collection, search, 100));
    let mut items = Vec::new();
    for _ in 0..MAX_PAGES {
        let bytes = match &body {
            Some(b) => remote::post_json(&url, b, cfg),
            None => remote::get(&url, cfg),
        }
        .map_err(fetch_err)?;
        let page = parse_json(&bytes, &url)?;
        for f in page
            .get("features")
            .and_then(Value::as_array)
            .ok_or_else(|| DataError::Catalog(format!("{url}: no features in the answer")))?
        {
            items.push(parse_item(f, &url, bands)?);
        }
        let previous = body.clone().unwrap_or(Value::Null);
        match next_page(&page, &previous) {
            Some((next, next_body)) => {
                url = remote::resolve(&url, &next);
                body = next_body;
            }
            None => return Ok(items),
        }
    }
    Err(DataError::Catalog(format!(
        "{api_url}: more than {MAX_PAGES} pages of results for one tile"
    )))
}

/// How deep a static catalog's children are followed.
const MAX_DEPTH: usize = 6;

/// Every item of `collection` in a static catalog, parsed once per process (per catalog
/// and collection); a failed load is not cached, so a transient error can recover.
pub fn catalog_items(
    url: &str,
    collection: &str,
    bands: &[&str],
    cfg: &RemoteConfig,
) -> Result<Arc<Vec<Item>>, DataError> {
    type Cache = Mutex<HashMap<(String, String), Arc<Vec<Item>>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (url.to_string(), collection.to_string());
    if let Some(hit) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(hit);
    }
    let mut items = Vec::new();
    walk(url, collection, bands, cfg, false, 0, &mut items)?;
    let items = Arc::new(items);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, items.clone());
    }
    Ok(items)
}

fn walk(
    location: &str,
    collection: &str,
    bands: &[&str],
    cfg: &RemoteConfig,
    inside: bool,
    depth: usize,
    out: &mut Vec<Item>,
) -> Result<(), DataError> {
    if depth > MAX_DEPTH {
        return Err(DataError::Catalog(format!(
            "{location}: catalog nested deeper than {MAX_DEPTH} levels"
        )));
    }
    let doc = parse_json(&remote::fetch(location, cfg).map_err(fetch_err)?, location)?;
    let kind = doc.get("type").and_then(Value::as_str).unwrap_or("");
    let wanted =
        |v: &Value| inside || v.get("collection").and_then(Value::as_str) == Some(collection);
    match kind {
        "Feature" => {
            if wanted(&doc) {
                out.push(parse_item(&doc, location, bands)?);
            }
            return Ok(());
        }
        "FeatureCollection" => {
            let top = doc.get("collection").and_then(Value::as_str) == Some(collection);
            for f in doc
                .get("features")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if top || wanted(f) {
                    out.push(parse_item(f, location, bands)?);
                }
            }
            return Ok(());
        }
        _ => {}
    }
    let inside = inside
        || (kind == "Collection" && doc.get("id").and_then(Value::as_str) == Some(collection));
    for link in doc
        .get("links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let rel = link.get("rel").and_then(Value::as_str).unwrap_or("");
        let Some(href) = link.get("href").and_then(Value::as_str) else {
            continue;
        };
        if rel == "child" || rel == "item" {
            walk(
                &remote::resolve(location, href),
                collection,
                bands,
                cfg,
                inside,
                depth + 1,
                out,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_names_map_to_earth_search_keys_first() {
        assert_eq!(asset_keys("B04"), vec!["red", "B04", "b04"]);
        assert_eq!(asset_keys("B8A")[0], "nir08");
        assert_eq!(asset_keys("SCL"), vec!["scl", "SCL", "scl"]);
        assert_eq!(asset_keys("B10")[0], "cirrus");
        assert_eq!(asset_keys("XYZ"), vec!["XYZ", "xyz"]);
    }

    #[test]
    fn the_offset_rule() {
        assert_eq!(dn_offset(Some("05.09"), None, false), -1000.0);
        assert_eq!(dn_offset(Some("04.00"), None, false), -1000.0);
        assert_eq!(dn_offset(Some("03.01"), None, false), 0.0);
        assert_eq!(dn_offset(None, None, false), 0.0);
        assert_eq!(dn_offset(Some("05.09"), None, true), 0.0);
        assert_eq!(dn_offset(Some("05.09"), Some(0.0), false), 0.0);
        assert_eq!(dn_offset(None, Some(-1000.0), false), -1000.0);
        assert_eq!(dn_offset(Some("garbage"), None, false), 0.0);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(19_521), "2023-06-13");
        assert_eq!(civil_date(-1), "1969-12-31");
        assert_eq!(civil_date(11_016), "2000-02-29");
        for d in [0, 59, 11_016, 19_000, 30_000] {
            let iso = format!("{}T12:00:00Z", civil_date(d));
            assert_eq!(super::super::day_of(&iso), Some(d), "{iso}");
        }
    }

    #[test]
    fn search_body_has_the_filter() {
        let s = Search {
            bbox: [15.0, 46.0, 15.1, 46.1],
            from_day: Some(19_521),
            to_day: Some(19_522),
            max_cloud_coverage: 30.0,
        };
        let b = search_body("sentinel-2-l2a", &s, 100);
        assert_eq!(b["collections"], json!(["sentinel-2-l2a"]));
        assert_eq!(b["bbox"], json!([15.0, 46.0, 15.1, 46.1]));
        assert_eq!(b["datetime"], "2023-06-13T00:00:00Z/2023-06-14T23:59:59Z");
        assert_eq!(b["query"]["eo:cloud_cover"]["lte"], 30.0);
        let open = search_body(
            "x",
            &Search {
                from_day: None,
                to_day: None,
                max_cloud_coverage: 100.0,
                ..s
            },
            10,
        );
        assert_eq!(open["datetime"], "../..");
        assert!(open.get("query").is_none());
    }

    #[test]
    fn next_links_get_post_merge_and_last_page() {
        let prev = json!({"collections": ["c"], "limit": 100});
        let get = json!({"links": [{"rel": "next", "href": "http://h/search?token=2"}]});
        assert_eq!(
            next_page(&get, &prev),
            Some(("http://h/search?token=2".into(), None))
        );
        let post_merge = json!({"links": [{"rel": "self", "href": "x"}, {"rel": "next",
            "href": "http://h/search", "method": "POST", "merge": true, "body": {"token": "t2"}}]});
        assert_eq!(
            next_page(&post_merge, &prev),
            Some((
                "http://h/search".into(),
                Some(json!({"collections": ["c"], "limit": 100, "token": "t2"}))
            ))
        );
        let post_replace = json!({"links": [{"rel": "next", "href": "s", "method": "POST",
            "body": {"token": "t3"}}]});
        assert_eq!(
            next_page(&post_replace, &prev).unwrap().1,
            Some(json!({"token": "t3"}))
        );
        assert_eq!(next_page(&json!({"links": []}), &prev), None);
        assert_eq!(next_page(&json!({}), &prev), None);
    }

    #[test]
    fn earth_search_item_parses() {
        let item = json!({
            "type": "Feature", "id": "S2B_33TWM_20230613_0_L2A", "collection": "sentinel-2-l2a",
            "bbox": [15.0, 45.9, 16.4, 46.9],
            "properties": {"datetime": "2023-06-13T10:06:23.456Z", "eo:cloud_cover": 12.5,
                "proj:epsg": 32633, "s2:processing_baseline": "05.09"},
            "assets": {
                "red": {"href": "https://b/S2B/B04.tif"},
                "nir": {"href": "./B08.tif"},
                "B8A": {"href": "B8A.tif"},
                "red-jp2": {"href": "s3://x/B04.jp2"},
                "scl": {"href": "SCL.tif"}
            }
        });
        let i = parse_item(
            &item,
            "http://h/c/items/a.json",
            &["B04", "B08", "B8A", "B02"],
        )
        .unwrap();
        assert_eq!(i.id, "S2B_33TWM_20230613_0_L2A");
        assert_eq!(i.day, 19_521);
        assert_eq!(i.cloud_cover, 12.5);
        assert_eq!(i.epsg, 32633);
        assert_eq!(i.bbox, [15.0, 45.9, 16.4, 46.9]);
        assert_eq!(i.dn_offset, -1000.0);
        assert_eq!(
            i.assets,
            vec![
                ("B04".to_string(), "https://b/S2B/B04.tif".to_string()),
                ("B08".to_string(), "http://h/c/items/B08.tif".to_string()),
                ("B8A".to_string(), "http://h/c/items/B8A.tif".to_string()),
            ]
        );
        let mut no_date = item.clone();
        no_date["properties"]
            .as_object_mut()
            .unwrap()
            .remove("datetime");
        assert!(parse_item(&no_date, "b", &[]).is_err());
    }
}
