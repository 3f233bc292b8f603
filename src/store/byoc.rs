//! The BYOC tile index: one row per collection (its `(BAND)` path template) and one row
//! per tile (its path, footprint, sensing time, cloud cover and bands). `data::byoc` fills
//! it from COG headers and reads it back as catalog items; only this file holds its SQL.

use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

use super::{now_rfc3339, Result, Store};

/// The schema of the index, applied as one migration by `schema.rs` (appended to its
/// list, so databases created before it gain the tables on their next open).
pub const MIGRATION: &str = r#"
CREATE TABLE byoc_collections (
    id TEXT PRIMARY KEY, template TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE byoc_tiles (
    collection_id TEXT NOT NULL REFERENCES byoc_collections(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    epsg INTEGER NOT NULL, x_min REAL NOT NULL, y_min REAL NOT NULL,
    x_max REAL NOT NULL, y_max REAL NOT NULL,
    west REAL NOT NULL, south REAL NOT NULL, east REAL NOT NULL, north REAL NOT NULL,
    sensing_time TEXT NOT NULL, day INTEGER NOT NULL, cloud_cover REAL,
    bands TEXT NOT NULL, ingested TEXT NOT NULL,
    PRIMARY KEY (collection_id, path));
CREATE INDEX byoc_tiles_day ON byoc_tiles(collection_id, day);
"#;

/// A BYOC collection as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ByocCollection {
    pub id: String,
    /// The `(BAND)` path template tiles were matched against at ingestion.
    pub template: String,
    pub created: String,
    pub tile_count: u64,
    /// Union of the bands of its tiles, sorted.
    pub bands: Vec<String>,
}

/// One tile of a BYOC collection.
#[derive(Debug, Clone, PartialEq)]
pub struct ByocTile {
    /// Location with `(BAND)` where the band name goes (local path or URL).
    pub path: String,
    pub epsg: u32,
    /// Footprint in the tile's CRS: x_min, y_min, x_max, y_max.
    pub proj_bbox: [f64; 4],
    /// Footprint in WGS84: west, south, east, north.
    pub bbox: [f64; 4],
    /// RFC 3339.
    pub sensing_time: String,
    /// Days since 1970-01-01 of `sensing_time`.
    pub day: i64,
    /// Percent; `None` when unknown.
    pub cloud_cover: Option<f64>,
    pub bands: Vec<String>,
}

fn tile_row(r: &Row<'_>) -> rusqlite::Result<ByocTile> {
    let bands: String = r.get(13)?;
    Ok(ByocTile {
        path: r.get(0)?,
        epsg: r.get(1)?,
        proj_bbox: [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
        bbox: [r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?],
        sensing_time: r.get(10)?,
        day: r.get(11)?,
        cloud_cover: r.get(12)?,
        bands: bands
            .split(',')
            .filter(|b| !b.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

const TILE_COLUMNS: &str = "path, epsg, x_min, y_min, x_max, y_max, west, south, east, north, \
     sensing_time, day, cloud_cover, bands";

impl Store {
    /// Creates the collection, or checks that an existing one has the same template (a
    /// collection whose tiles follow two layouts would be ambiguous). Returns false when
    /// the template differs.
    pub fn byoc_create_collection(&self, id: &str, template: &str) -> Result<bool> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Option<String> = tx
            .query_row(
                "SELECT template FROM byoc_collections WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        let ok = match existing {
            Some(t) => t == template,
            None => {
                tx.execute(
                    "INSERT INTO byoc_collections(id, template, created) VALUES (?1, ?2, ?3)",
                    params![id, template, now_rfc3339()],
                )?;
                true
            }
        };
        tx.commit()?;
        Ok(ok)
    }

    /// Inserts or replaces tiles (keyed by collection and path) in one transaction, so a
    /// re-ingestion updates a tile instead of duplicating it.
    pub fn byoc_put_tiles(&self, collection: &str, tiles: &[ByocTile]) -> Result<usize> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_rfc3339();
        {
            let mut st = tx.prepare(
                "INSERT OR REPLACE INTO byoc_tiles(collection_id, path, epsg, x_min, y_min,
                   x_max, y_max, west, south, east, north, sensing_time, day, cloud_cover,
                   bands, ingested)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?;
            for t in tiles {
                st.execute(params![
                    collection,
                    t.path,
                    t.epsg,
                    t.proj_bbox[0],
                    t.proj_bbox[1],
                    t.proj_bbox[2],
                    t.proj_bbox[3],
                    t.bbox[0],
                    t.bbox[1],
                    t.bbox[2],
                    t.bbox[3],
                    t.sensing_time,
                    t.day,
                    t.cloud_cover,
                    t.bands.join(","),
                    now,
                ])?;
            }
        }
        tx.commit()?;
        Ok(tiles.len())
    }

    /// One collection with its tile count and bands, if it exists.
    pub fn byoc_collection(&self, id: &str) -> Result<Option<ByocCollection>> {
        Ok(self.byoc_collections()?.into_iter().find(|c| c.id == id))
    }

    /// Every collection, by id.
    pub fn byoc_collections(&self) -> Result<Vec<ByocCollection>> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT c.id, c.template, c.created, COUNT(t.path), GROUP_CONCAT(t.bands, ',')
             FROM byoc_collections c LEFT JOIN byoc_tiles t ON t.collection_id = c.id
             GROUP BY c.id ORDER BY c.id",
        )?;
        let rows = st.query_map([], |r| {
            let all: Option<String> = r.get(4)?;
            let mut bands: Vec<String> = all
                .unwrap_or_default()
                .split(',')
                .filter(|b| !b.is_empty())
                .map(str::to_string)
                .collect();
            bands.sort();
            bands.dedup();
            Ok(ByocCollection {
                id: r.get(0)?,
                template: r.get(1)?,
                created: r.get(2)?,
                tile_count: r.get::<_, i64>(3)? as u64,
                bands,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Tiles of a collection whose WGS84 footprint intersects `lonlat_bbox` and whose day
    /// is within `from..=to`; the caller applies cloud cover and mosaicking order.
    pub fn byoc_tiles(
        &self,
        collection: &str,
        lonlat_bbox: [f64; 4],
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<ByocTile>> {
        let c = self.conn();
        let mut st = c.prepare(&format!(
            "SELECT {TILE_COLUMNS} FROM byoc_tiles
             WHERE collection_id = ?1 AND day >= ?2 AND day <= ?3
               AND west < ?6 AND east > ?4 AND south < ?7 AND north > ?5
             ORDER BY path"
        ))?;
        let rows = st.query_map(
            params![
                collection,
                from_day,
                to_day,
                lonlat_bbox[0],
                lonlat_bbox[1],
                lonlat_bbox[2],
                lonlat_bbox[3]
            ],
            tile_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
