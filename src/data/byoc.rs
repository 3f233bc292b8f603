//! BYOC-style collections, as in Sentinel Hub: a request names `"type": "byoc-<id>"`, and
//! the collection is a set of tiles, each a path with `(BAND)` where the band name goes
//! (`/data/col/T33TWM_20230605/(BAND).tif`, `file:///...`, any object_store URL), indexed
//! in the SQLite database (`store::byoc`) with its footprint, sensing time, cloud cover
//! and bands.
//!
//! `tessera collection ingest` fills the index: the files given (or found by scanning the
//! template) are matched against the collection's template, grouped into tiles, and each
//! band's COG header (GeoKeys + geotransform, `raster::cog`) gives the footprint. Reading
//! turns the tiles that touch a tile's extent into catalog items and reuses the catalog
//! readers (`read_items`, `mosaic_items`), so BYOC tiles are warped and mosaicked exactly
//! as the sample and STAC collections are.
//!
//! The index is the engine's database: the engine (or the CLI) calls [`set_index`] once,
//! because `data::read` has no handle on the store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use super::{DataError, Filter, Item, ReadRequest, Scene};
use crate::raster::cog::Cog;
use crate::raster::warp;
use crate::store::byoc::{ByocCollection, ByocTile};
use crate::store::Store;

/// Collection types that start with this are BYOC collections.
pub const TYPE_PREFIX: &str = "byoc-";
/// The placeholder for the band name in a template or tile path.
pub const BAND: &str = "(BAND)";

#[derive(Debug, thiserror::Error)]
pub enum ByocError {
    #[error("bad collection id '{0}': use 1-64 letters, digits, '-' or '_' (as in byoc-<id>)")]
    BadId(String),
    #[error("bad template '{template}': {reason}")]
    BadTemplate { template: String, reason: String },
    #[error("collection {id} already exists with template '{existing}', not '{given}'")]
    TemplateMismatch {
        id: String,
        existing: String,
        given: String,
    },
    #[error("{path} does not match the template '{template}'")]
    NoMatch { path: String, template: String },
    #[error("no files found for '{0}'")]
    NothingFound(String),
    #[error("{path}: {reason}")]
    Header { path: String, reason: String },
    #[error(
        "tile {0}: no sensing time (no YYYYMMDD or YYYY-MM-DD date in its path); \
             pass --sensing-time"
    )]
    NoSensingTime(String),
    #[error("bad sensing time '{0}': use RFC 3339, e.g. 2023-06-05T10:00:00Z")]
    BadSensingTime(String),
    #[error("cloud cover {0} is not a percentage (0-100)")]
    BadCloudCover(f64),
    #[error("tile index: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("scanning {path}: {reason}")]
    Scan { path: String, reason: String },
}

// ---- pure parts --------------------------------------------------------------------

/// The collection id of a `byoc-<id>` type, if it is one.
pub fn collection_id(collection_type: &str) -> Option<&str> {
    collection_type
        .strip_prefix(TYPE_PREFIX)
        .filter(|id| !id.is_empty())
}

/// Collection ids become part of a request's `type` and of SQL parameters: keep them to
/// the characters Sentinel Hub's ids use (UUIDs) plus `_`.
pub fn validate_id(id: &str) -> Result<(), ByocError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ByocError::BadId(id.to_string()))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Lit(String),
    /// `*`: any characters within one path segment.
    Star,
    /// `(BAND)`: a non-empty band name within one path segment.
    Band,
}

/// A path pattern: literal text, `*` wildcards and `(BAND)` captures. A collection's
/// template has at least one `(BAND)`; a glob given on the command line has none.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    text: String,
    tokens: Vec<Token>,
}

/// Where a path matched a pattern: the band captured and the byte spans it occupied.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub band: Option<String>,
    spans: Vec<(usize, usize)>,
}

impl Pattern {
    fn parse(text: &str) -> Pattern {
        let mut tokens = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix(BAND) {
                if !lit.is_empty() {
                    tokens.push(Token::Lit(std::mem::take(&mut lit)));
                }
                tokens.push(Token::Band);
                rest = r;
            } else if let Some(r) = rest.strip_prefix('*') {
                if !lit.is_empty() {
                    tokens.push(Token::Lit(std::mem::take(&mut lit)));
                }
                // `**` is one star: a star never crosses a '/'.
                if tokens.last() != Some(&Token::Star) {
                    tokens.push(Token::Star);
                }
                rest = r;
            } else {
                let c = rest.chars().next().unwrap_or('\0');
                lit.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if !lit.is_empty() {
            tokens.push(Token::Lit(lit));
        }
        Pattern {
            text: text.to_string(),
            tokens,
        }
    }

    /// A collection template: must contain `(BAND)`, and `(BAND)` must not touch a `*`
    /// (where one ends and the other starts would be ambiguous).
    pub fn template(text: &str) -> Result<Pattern, ByocError> {
        let bad = |reason: &str| ByocError::BadTemplate {
            template: text.to_string(),
            reason: reason.to_string(),
        };
        let p = Pattern::parse(text);
        if !p.tokens.contains(&Token::Band) {
            return Err(bad("it must contain (BAND) where the band name goes"));
        }
        for w in p.tokens.windows(2) {
            if matches!(
                w,
                [Token::Band, Token::Star]
                    | [Token::Star, Token::Band]
                    | [Token::Band, Token::Band]
            ) {
                return Err(bad(
                    "(BAND) must be separated from '*' and from another (BAND) by literal text",
                ));
            }
        }
        Ok(p)
    }

    /// A glob (only `*`), for the file arguments of `collection ingest`.
    pub fn glob(text: &str) -> Pattern {
        Pattern::parse(text)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn has_wildcards(&self) -> bool {
        self.tokens.iter().any(|t| !matches!(t, Token::Lit(_)))
    }

    /// Matches the whole of `path`. Every `(BAND)` must capture the same name.
    pub fn matches(&self, path: &str) -> Option<Match> {
        let mut spans = Vec::new();
        if match_from(&self.tokens, path, 0, &mut spans) {
            let band = spans.first().map(|&(a, b)| path[a..b].to_string());
            Some(Match { band, spans })
        } else {
            None
        }
    }

    /// The literal folder a scan for this pattern starts from: everything before the
    /// first wildcard, cut at the last '/'.
    fn scan_root(&self) -> String {
        let mut prefix = String::new();
        for t in &self.tokens {
            match t {
                Token::Lit(s) => prefix.push_str(s),
                _ => break,
            }
        }
        if !self.has_wildcards() {
            return prefix;
        }
        match prefix.rfind('/') {
            Some(0) => "/".to_string(),
            Some(i) => prefix[..i].to_string(),
            None => ".".to_string(),
        }
    }
}

/// Backtracking matcher; `spans` collects the `(BAND)` captures. Wildcards never cross a
/// '/', so the work is bounded by the segment lengths.
fn match_from(tokens: &[Token], s: &str, pos: usize, spans: &mut Vec<(usize, usize)>) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return pos == s.len();
    };
    match first {
        Token::Lit(l) => {
            s[pos..].starts_with(l.as_str()) && match_from(rest, s, pos + l.len(), spans)
        }
        Token::Star | Token::Band => {
            let seg_end = s[pos..].find('/').map_or(s.len(), |i| pos + i);
            // A star is greedy and a band lazy, so in `*_(BAND).TIF` the band is the
            // last '_' part (Landsat names), not everything after the first '_'.
            let ends: Vec<usize> = if *first == Token::Band {
                (pos + 1..=seg_end).collect()
            } else {
                (pos..=seg_end).rev().collect()
            };
            for end in ends {
                if s.is_char_boundary(end) {
                    if *first == Token::Band {
                        let cand = &s[pos..end];
                        let same = spans.first().is_none_or(|&(a, b)| &s[a..b] == cand);
                        if same {
                            spans.push((pos, end));
                            if match_from(rest, s, end, spans) {
                                return true;
                            }
                            spans.pop();
                        }
                    } else if match_from(rest, s, end, spans) {
                        return true;
                    }
                }
            }
            false
        }
    }
}

/// The tile path of a matched file: the band's spans replaced by `(BAND)`.
pub fn tile_path(path: &str, m: &Match) -> String {
    let mut out = String::with_capacity(path.len());
    let mut at = 0;
    for &(a, b) in &m.spans {
        out.push_str(&path[at..a]);
        out.push_str(BAND);
        at = b;
    }
    out.push_str(&path[at..]);
    out
}

/// A local path relative to `cwd` made absolute (URLs and absolute paths unchanged), so the
/// index never depends on where `ingest` ran.
pub fn absolute(cwd: &str, p: &str) -> String {
    if p.contains("://") || p.starts_with('/') {
        return p.to_string();
    }
    let rel = p.trim_start_matches("./");
    format!("{}/{}", cwd.trim_end_matches('/'), rel)
}

/// Groups files into tiles by the template: tile path -> (band -> file), sorted.
pub fn group_files(
    template: &Pattern,
    files: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, String>>, ByocError> {
    let mut tiles: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for f in files {
        let m = template.matches(f).ok_or_else(|| ByocError::NoMatch {
            path: f.clone(),
            template: template.as_str().to_string(),
        })?;
        let band = m.band.clone().unwrap_or_default();
        tiles
            .entry(tile_path(f, &m))
            .or_default()
            .insert(band, f.clone());
    }
    Ok(tiles)
}

/// The sensing date in a path: a `YYYYMMDD` (exactly eight digits, optionally followed
/// by `THHMMSS`) or `YYYY-MM-DD` that is a valid date, as RFC 3339 at UTC. Segments are
/// searched from the file name back to the root (the most specific first); within one
/// segment the first date wins, because Landsat names carry the acquisition date before
/// the processing date.
pub fn date_from_path(path: &str) -> Option<String> {
    let seg_dates = |seg: &str| -> Option<String> {
        let b = seg.as_bytes();
        let digit = |i: usize| i < b.len() && b[i].is_ascii_digit();
        let mut i = 0;
        while i < b.len() {
            if !digit(i) || (i > 0 && digit(i - 1)) {
                i += 1;
                continue;
            }
            // A run of digits starts at i.
            let run = (i..b.len()).take_while(|&j| digit(j)).count();
            let found = if run == 8 {
                let (y, m, d) = (&seg[i..i + 4], &seg[i + 4..i + 6], &seg[i + 6..i + 8]);
                let time = if b.get(i + 8) == Some(&b'T')
                    && (i + 9..i + 15).all(digit)
                    && !digit(i + 15)
                {
                    Some(&seg[i + 9..i + 15])
                } else {
                    None
                };
                ymd(y, m, d).map(|date| match time {
                    Some(t) => format!("{date}T{}:{}:{}Z", &t[0..2], &t[2..4], &t[4..6]),
                    None => format!("{date}T00:00:00Z"),
                })
            } else if run == 4
                && b.get(i + 4) == Some(&b'-')
                && (i + 5..i + 7).all(digit)
                && b.get(i + 7) == Some(&b'-')
                && (i + 8..i + 10).all(digit)
                && !digit(i + 10)
            {
                ymd(&seg[i..i + 4], &seg[i + 5..i + 7], &seg[i + 8..i + 10])
                    .map(|date| format!("{date}T00:00:00Z"))
            } else {
                None
            };
            if found.is_some() {
                return found;
            }
            i += run;
        }
        None
    };
    path.rsplit('/').find_map(seg_dates)
}

fn ymd(y: &str, m: &str, d: &str) -> Option<String> {
    let (y, m, d): (u32, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1970..=2100).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > days[m as usize - 1] {
        return None;
    }
    Some(format!("{y:04}-{m:02}-{d:02}"))
}

/// Checks a request's bands against a BYOC collection before any tile runs. `found` is
/// the collection as the index has it (`None`: never ingested). `dataMask` always exists.
pub fn check_bands(
    collection_type: &str,
    found: Option<&ByocCollection>,
    bands: &[String],
) -> Result<(), DataError> {
    let id = collection_id(collection_type)
        .ok_or_else(|| DataError::UnknownCollection(collection_type.to_string()))?;
    let c = found.ok_or_else(|| {
        DataError::Catalog(format!(
            "collection type '{collection_type}': no BYOC collection '{id}' has been ingested \
             (see `tessera collection list`; add one with `tessera collection ingest --id {id}`)"
        ))
    })?;
    for b in bands {
        if b != "dataMask" && !c.bands.contains(b) {
            return Err(DataError::UnknownBand {
                band: b.clone(),
                collection: collection_type.to_string(),
                available: if c.bands.is_empty() {
                    "no bands (no tiles ingested yet)".to_string()
                } else {
                    c.bands.join(", ")
                },
            });
        }
    }
    Ok(())
}

/// A tile of the index as a catalog item: one asset per band, the path with `(BAND)`
/// replaced. Unknown cloud cover counts as 0 (it passes any maxCloudCoverage).
pub fn tile_item(t: &ByocTile) -> Item {
    Item {
        id: t.path.clone(),
        datetime: t.sensing_time.clone(),
        day: t.day,
        cloud_cover: t.cloud_cover.unwrap_or(0.0),
        epsg: t.epsg,
        proj_bbox: t.proj_bbox,
        bbox: t.bbox,
        assets: t
            .bands
            .iter()
            .map(|b| (b.clone(), t.path.replace(BAND, b)))
            .collect(),
        // BYOC files are served as stored.
        dn_offset: 0.0,
    }
}

// ---- ingestion ---------------------------------------------------------------------

/// What `tessera collection ingest` was asked to do.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub id: String,
    pub template: String,
    /// Files, URLs or local globs (`*`); empty: scan the template itself.
    pub inputs: Vec<String>,
    /// Overrides the date found in each tile's path.
    pub sensing_time: Option<String>,
    pub cloud_cover: Option<f64>,
    /// Folder relative local paths are resolved against.
    pub cwd: String,
}

/// Per tile, what was indexed.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestReport {
    pub collection: String,
    pub tiles: Vec<ByocTile>,
}

/// Reads the header of every file, builds the tiles and writes them to the index in one
/// transaction (nothing is written if any file fails).
pub fn ingest(store: &Store, opts: &IngestOptions) -> Result<IngestReport, ByocError> {
    validate_id(&opts.id)?;
    let template = Pattern::template(&absolute(&opts.cwd, &opts.template))?;
    if let Some(cc) = opts.cloud_cover {
        if !(0.0..=100.0).contains(&cc) {
            return Err(ByocError::BadCloudCover(cc));
        }
    }
    let forced_time = match &opts.sensing_time {
        Some(t) => {
            let day = super::day_of(t).ok_or_else(|| ByocError::BadSensingTime(t.clone()))?;
            Some((t.clone(), day))
        }
        None => None,
    };
    // Refuse a second layout before reading any file.
    if let Some(existing) = store.byoc_collection(&opts.id)? {
        if existing.template != template.as_str() {
            return Err(ByocError::TemplateMismatch {
                id: opts.id.clone(),
                existing: existing.template,
                given: template.as_str().to_string(),
            });
        }
    }
    let mut files = Vec::new();
    if opts.inputs.is_empty() {
        files = scan_local(&Pattern::glob(template.as_str()))?;
        if files.is_empty() {
            return Err(ByocError::NothingFound(template.as_str().to_string()));
        }
    }
    for input in &opts.inputs {
        let p = absolute(&opts.cwd, input);
        let g = Pattern::glob(&p);
        if g.has_wildcards() && !p.contains("://") {
            let found = scan_local(&g)?;
            if found.is_empty() {
                return Err(ByocError::NothingFound(p));
            }
            files.extend(found);
        } else {
            files.push(p);
        }
    }
    files.sort();
    files.dedup();
    let groups = group_files(&template, &files)?;
    let mut tiles = Vec::with_capacity(groups.len());
    for (path, bands) in &groups {
        let (epsg, proj_bbox) = footprint(bands)?;
        let bbox = warp::transform_bbox(epsg, 4326, proj_bbox).map_err(|e| ByocError::Header {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let (sensing_time, day) = match &forced_time {
            Some(t) => t.clone(),
            None => {
                let t =
                    date_from_path(path).ok_or_else(|| ByocError::NoSensingTime(path.clone()))?;
                let day = super::day_of(&t).ok_or_else(|| ByocError::BadSensingTime(t.clone()))?;
                (t, day)
            }
        };
        tiles.push(ByocTile {
            path: path.clone(),
            epsg,
            proj_bbox,
            bbox,
            sensing_time,
            day,
            cloud_cover: opts.cloud_cover,
            bands: bands.keys().cloned().collect(),
        });
    }
    if !store.byoc_create_collection(&opts.id, template.as_str())? {
        let existing = store
            .byoc_collection(&opts.id)?
            .map(|c| c.template)
            .unwrap_or_default();
        return Err(ByocError::TemplateMismatch {
            id: opts.id.clone(),
            existing,
            given: template.as_str().to_string(),
        });
    }
    store.byoc_put_tiles(&opts.id, &tiles)?;
    Ok(IngestReport {
        collection: opts.id.clone(),
        tiles,
    })
}

/// The union of the bands' extents; every band of a tile must share one CRS.
fn footprint(bands: &BTreeMap<String, String>) -> Result<(u32, [f64; 4]), ByocError> {
    let mut epsg = None;
    let mut bb = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for file in bands.values() {
        let cog = Cog::open_path(file).map_err(|e| ByocError::Header {
            path: file.clone(),
            reason: e.to_string(),
        })?;
        let g = cog.georef;
        let (w, h) = cog.levels.first().map_or((0, 0), |l| (l.width, l.height));
        match epsg {
            None => epsg = Some(g.epsg),
            Some(e) if e != g.epsg => {
                return Err(ByocError::Header {
                    path: file.clone(),
                    reason: format!(
                        "EPSG:{} differs from the tile's other bands (EPSG:{e})",
                        g.epsg
                    ),
                })
            }
            _ => {}
        }
        bb[0] = bb[0].min(g.x_min);
        bb[1] = bb[1].min(g.y_max - h as f64 * g.res_y);
        bb[2] = bb[2].max(g.x_min + w as f64 * g.res_x);
        bb[3] = bb[3].max(g.y_max);
    }
    Ok((epsg.unwrap_or(4326), bb))
}

/// Local files matching a glob (wildcards within segments only), walking from the
/// pattern's literal root no deeper than the pattern itself.
pub fn scan_local(pattern: &Pattern) -> Result<Vec<String>, ByocError> {
    let text = pattern.as_str();
    let local = text.strip_prefix("file://").unwrap_or(text);
    if local.contains("://") {
        return Err(ByocError::Scan {
            path: text.to_string(),
            reason: "only local folders can be scanned; list the URLs of the files instead".into(),
        });
    }
    let pat = Pattern::glob(local);
    let root = pat.scan_root();
    let depth = local
        .matches('/')
        .count()
        .saturating_sub(root.matches('/').count());
    let mut out = Vec::new();
    walk(&PathBuf::from(&root), depth + 1, &pat, &mut out)?;
    if text.starts_with("file://") {
        out = out.into_iter().map(|p| format!("file://{p}")).collect();
    }
    out.sort();
    Ok(out)
}

fn walk(
    dir: &PathBuf,
    depth: usize,
    pat: &Pattern,
    out: &mut Vec<String>,
) -> Result<(), ByocError> {
    if depth == 0 {
        return Ok(());
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(ByocError::Scan {
                path: dir.display().to_string(),
                reason: e.to_string(),
            })
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(s) = path.to_str() else { continue };
        let s = s.strip_prefix("./").unwrap_or(s).to_string();
        if path.is_dir() {
            walk(&path, depth - 1, pat, out)?;
        } else if pat.matches(&s).is_some() {
            out.push(s);
        }
    }
    Ok(())
}

// ---- reading -----------------------------------------------------------------------

/// The index the engine reads BYOC collections from (its database).
static INDEX: RwLock<Option<Arc<Store>>> = RwLock::new(None);

/// Points BYOC reads at a database file (the engine's). Opens its own connection.
pub fn set_index(path: &std::path::Path) -> Result<(), ByocError> {
    let store = Store::open(path)?;
    let mut g = INDEX.write().unwrap_or_else(|e| e.into_inner());
    *g = Some(Arc::new(store));
    Ok(())
}

fn index() -> Result<Arc<Store>, DataError> {
    INDEX
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or_else(|| DataError::Catalog("no BYOC tile index is configured".into()))
}

fn store_err(e: impl std::fmt::Display) -> DataError {
    DataError::Catalog(format!("BYOC tile index: {e}"))
}

/// [`check_bands`] against the configured index.
pub fn check_bands_indexed(collection_type: &str, bands: &[String]) -> Result<(), DataError> {
    let id = collection_id(collection_type)
        .ok_or_else(|| DataError::UnknownCollection(collection_type.to_string()))?;
    let found = index()?.byoc_collection(id).map_err(store_err)?;
    check_bands(collection_type, found.as_ref(), bands)
}

/// The items of a collection that may touch the tile, from the index (the catalog
/// selection then applies the exact footprint, time and cloud filters and the order).
pub fn items(
    store: &Store,
    req: &ReadRequest<'_>,
    filter: &Filter,
) -> Result<Vec<Item>, DataError> {
    let id = collection_id(req.collection)
        .ok_or_else(|| DataError::UnknownCollection(req.collection.to_string()))?;
    let g = &req.georef;
    // The tile plus 2 pixels, as the catalog selection uses.
    let grown = [
        g.x_min - 2.0 * g.res_x,
        g.y_max - (req.height as f64 + 2.0) * g.res_y,
        g.x_min + (req.width as f64 + 2.0) * g.res_x,
        g.y_max + 2.0 * g.res_y,
    ];
    let ll =
        warp::transform_bbox(g.epsg, 4326, grown).map_err(|e| DataError::Georef(e.to_string()))?;
    let tiles = store
        .byoc_tiles(
            id,
            ll,
            filter.from_day.unwrap_or(i64::MIN),
            filter.to_day.unwrap_or(i64::MAX),
        )
        .map_err(store_err)?;
    Ok(tiles.iter().map(tile_item).collect())
}

/// BYOC bands are served as stored (Sentinel Hub's BYOC units are the file's values): the
/// Sentinel-2 REFLECTANCE scaling must not apply.
fn as_stored(filter: &Filter) -> Filter {
    Filter {
        units: super::Units::Dn,
        ..filter.clone()
    }
}

/// SIMPLE mosaicking of a BYOC collection from `store`.
pub fn read_simple_with(
    store: &Store,
    req: &ReadRequest<'_>,
    filter: &Filter,
) -> Result<Vec<Vec<f32>>, DataError> {
    let items = items(store, req, filter)?;
    super::mosaic_items(&items, req, &as_stored(filter))
}

/// One array per BYOC tile (ORBIT/TILE) from `store`.
pub fn read_scenes_with(
    store: &Store,
    req: &ReadRequest<'_>,
    filter: &Filter,
) -> Result<Vec<Scene>, DataError> {
    let items = items(store, req, filter)?;
    super::read_items(&items, req, &as_stored(filter))
}

/// SIMPLE mosaicking from the configured index.
pub fn read_simple(req: &ReadRequest<'_>, filter: &Filter) -> Result<Vec<Vec<f32>>, DataError> {
    check_bands_indexed(req.collection, req.bands)?;
    let store = index()?;
    read_simple_with(&store, req, filter)
}

/// ORBIT/TILE reading from the configured index.
pub fn read_scenes(req: &ReadRequest<'_>, filter: &Filter) -> Result<Vec<Scene>, DataError> {
    check_bands_indexed(req.collection, req.bands)?;
    let store = index()?;
    read_scenes_with(&store, req, filter)
}

#[cfg(test)]
#[path = "byoc_tests.rs"]
mod tests;
