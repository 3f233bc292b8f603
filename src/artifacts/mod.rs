//! The files the hosted Batch v2 service writes beside a task's outputs (`batch-api.md`
//! §16), with the same names, in the root folder of the delivery URL (the part before its
//! first placeholder):
//!
//! * `request-<requestId>.json`: the create body as stored (never its credentials), on create;
//! * `featureManifest-<requestId>.gpkg`: a GeoPackage with one table `feature_<epsg>` per CRS
//!   (`fid`, `outputId`, `identifier`, `path`, `width`, `height`, `geometry`), after analysis;
//! * `execution-<requestId>.sqlite`: table `features` (`id`, `name`, `status` PENDING, DONE
//!   or FATAL, `error`, `delivered`), while processing and final at the end.
//!
//! This module builds the bytes; the engine decides when and uploads them through the
//! request's sinks. Both databases are SQLite files made with the SQLite Tessera links.

pub mod gpkg;

use std::collections::BTreeMap;
use std::path::PathBuf;

use rusqlite::{params, Connection};

use crate::engine::lifecycle::TileStatus;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("building {what}: {error}")]
    Sqlite {
        what: &'static str,
        error: rusqlite::Error,
    },
    #[error("building {what}: {error}")]
    Io {
        what: &'static str,
        error: std::io::Error,
    },
    #[error("EPSG:{0} has no GeoPackage definition here (only WGS 84 and its UTM zones)")]
    UnsupportedCrs(u32),
}

/// The request JSON's file name.
pub fn request_json_name(request_id: &str) -> String {
    format!("request-{request_id}.json")
}

pub fn feature_manifest_name(request_id: &str) -> String {
    format!("featureManifest-{request_id}.gpkg")
}

pub fn execution_db_name(request_id: &str) -> String {
    format!("execution-{request_id}.sqlite")
}

/// Where an artifact named `name` goes for an output path template: the folder before the
/// template's first placeholder.
pub fn location(template: &str, name: &str) -> String {
    let root = crate::output::listing_prefix(template);
    if root.is_empty() || root.ends_with('/') {
        format!("{root}{name}")
    } else {
        format!("{root}/{name}")
    }
}

/// A feature's status in the execution database, for every tile status: DONE once
/// processed, FATAL once failed for good, PENDING while anything may still happen.
pub fn execution_status(status: TileStatus) -> &'static str {
    match status {
        TileStatus::Processed => "DONE",
        TileStatus::Failed => "FATAL",
        TileStatus::Pending
        | TileStatus::Scheduled
        | TileStatus::Queued
        | TileStatus::Processing => "PENDING",
    }
}

/// One row of the execution database.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRow {
    pub id: i64,
    pub name: String,
    pub status: TileStatus,
    pub error: Option<String>,
}

/// One row of the feature manifest: a feature's output.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestRow {
    pub output_id: String,
    pub identifier: String,
    pub path: String,
    pub width: i64,
    pub height: i64,
    pub epsg: u32,
    /// `[x_min, y_min, x_max, y_max]` in the feature's CRS.
    pub bounds: [f64; 4],
}

/// A fresh SQLite file in the temp folder, removed when dropped.
struct TempDb {
    path: PathBuf,
}

impl TempDb {
    fn new(what: &'static str) -> Result<(TempDb, Connection), ArtifactError> {
        let path = std::env::temp_dir().join(format!("tessera-{}.sqlite", uuid::Uuid::new_v4()));
        let conn =
            Connection::open(&path).map_err(|error| ArtifactError::Sqlite { what, error })?;
        Ok((TempDb { path }, conn))
    }

    fn into_bytes(self, conn: Connection, what: &'static str) -> Result<Vec<u8>, ArtifactError> {
        conn.close()
            .map_err(|(_, error)| ArtifactError::Sqlite { what, error })?;
        std::fs::read(&self.path).map_err(|error| ArtifactError::Io { what, error })
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `execution-<requestId>.sqlite` for these tiles.
pub fn execution_db(rows: &[ExecutionRow]) -> Result<Vec<u8>, ArtifactError> {
    const WHAT: &str = "the execution database";
    let sql = |error| ArtifactError::Sqlite { what: WHAT, error };
    let (file, mut conn) = TempDb::new(WHAT)?;
    let tx = conn.transaction().map_err(sql)?;
    tx.execute_batch(
        "CREATE TABLE features (id INTEGER PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,
           error TEXT, delivered BOOLEAN NOT NULL);",
    )
    .map_err(sql)?;
    {
        let mut st = tx
            .prepare("INSERT INTO features(id, name, status, error, delivered) VALUES (?1, ?2, ?3, ?4, ?5)")
            .map_err(sql)?;
        for r in rows {
            st.execute(params![
                r.id,
                r.name,
                execution_status(r.status),
                r.error,
                r.status == TileStatus::Processed
            ])
            .map_err(sql)?;
        }
    }
    tx.commit().map_err(sql)?;
    file.into_bytes(conn, WHAT)
}

/// `featureManifest-<requestId>.gpkg`: a GeoPackage 1.3 with one feature table per CRS.
pub fn feature_manifest(rows: &[ManifestRow]) -> Result<Vec<u8>, ArtifactError> {
    const WHAT: &str = "the feature manifest";
    let sql = |error| ArtifactError::Sqlite { what: WHAT, error };
    let mut by_crs: BTreeMap<u32, Vec<&ManifestRow>> = BTreeMap::new();
    for r in rows {
        by_crs.entry(r.epsg).or_default().push(r);
    }
    for epsg in by_crs.keys() {
        if gpkg::srs_wkt(*epsg).is_none() {
            return Err(ArtifactError::UnsupportedCrs(*epsg));
        }
    }
    let (file, mut conn) = TempDb::new(WHAT)?;
    // 'GPKG' and version 1.3.0, as the spec asks of every GeoPackage file.
    conn.execute_batch("PRAGMA application_id = 1196444487; PRAGMA user_version = 10300;")
        .map_err(sql)?;
    let tx = conn.transaction().map_err(sql)?;
    tx.execute_batch(GPKG_TABLES).map_err(sql)?;
    let mut srs = vec![4326];
    srs.extend(by_crs.keys().copied().filter(|c| *c != 4326));
    for epsg in srs {
        let Some(wkt) = gpkg::srs_wkt(epsg) else {
            return Err(ArtifactError::UnsupportedCrs(epsg));
        };
        tx.execute(
            "INSERT INTO gpkg_spatial_ref_sys(srs_name, srs_id, organization, organization_coordsys_id,
               definition) VALUES (?1, ?2, 'EPSG', ?2, ?3)",
            params![gpkg::srs_name(epsg), epsg, wkt],
        )
        .map_err(sql)?;
    }
    for (epsg, features) in &by_crs {
        let table = format!("feature_{epsg}");
        tx.execute_batch(&format!(
            "CREATE TABLE \"{table}\" (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
               geometry POLYGON, outputId TEXT, identifier TEXT, path TEXT, width INTEGER,
               height INTEGER);"
        ))
        .map_err(sql)?;
        let mut extent = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        {
            let mut st = tx
                .prepare(&format!(
                    "INSERT INTO \"{table}\"(geometry, outputId, identifier, path, width, height)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                ))
                .map_err(sql)?;
            for f in features {
                let blob = gpkg::polygon_blob(*epsg as i32, &gpkg::rect_ring(f.bounds));
                st.execute(params![
                    blob,
                    f.output_id,
                    f.identifier,
                    f.path,
                    f.width,
                    f.height
                ])
                .map_err(sql)?;
                extent[0] = extent[0].min(f.bounds[0]);
                extent[1] = extent[1].min(f.bounds[1]);
                extent[2] = extent[2].max(f.bounds[2]);
                extent[3] = extent[3].max(f.bounds[3]);
            }
        }
        tx.execute(
            "INSERT INTO gpkg_contents(table_name, data_type, identifier, min_x, min_y, max_x, max_y, srs_id)
             VALUES (?1, 'features', ?1, ?2, ?3, ?4, ?5, ?6)",
            params![table, extent[0], extent[1], extent[2], extent[3], epsg],
        )
        .map_err(sql)?;
        tx.execute(
            "INSERT INTO gpkg_geometry_columns(table_name, column_name, geometry_type_name, srs_id, z, m)
             VALUES (?1, 'geometry', 'POLYGON', ?2, 0, 0)",
            params![table, epsg],
        )
        .map_err(sql)?;
    }
    tx.commit().map_err(sql)?;
    file.into_bytes(conn, WHAT)
}

/// The GeoPackage core tables (spec §1.1.2, §1.1.3, §2.1.5) with the two undefined SRSs.
const GPKG_TABLES: &str = r#"
CREATE TABLE gpkg_spatial_ref_sys (
    srs_name TEXT NOT NULL, srs_id INTEGER NOT NULL PRIMARY KEY, organization TEXT NOT NULL,
    organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT);
INSERT INTO gpkg_spatial_ref_sys VALUES
    ('Undefined cartesian SRS', -1, 'NONE', -1, 'undefined', 'undefined cartesian coordinate reference system'),
    ('Undefined geographic SRS', 0, 'NONE', 0, 'undefined', 'undefined geographic coordinate reference system');
CREATE TABLE gpkg_contents (
    table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE,
    description TEXT DEFAULT '',
    last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
    CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
CREATE TABLE gpkg_geometry_columns (
    table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL,
    srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
    CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
    CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
    CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn open(bytes: &[u8]) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sqlite");
        std::fs::write(&path, bytes).unwrap();
        let c = Connection::open(&path).unwrap();
        (dir, c)
    }

    #[test]
    fn every_tile_status_has_an_execution_status() {
        let want = [
            (TileStatus::Pending, "PENDING"),
            (TileStatus::Scheduled, "PENDING"),
            (TileStatus::Queued, "PENDING"),
            (TileStatus::Processing, "PENDING"),
            (TileStatus::Processed, "DONE"),
            (TileStatus::Failed, "FATAL"),
        ];
        assert_eq!(want.len(), TileStatus::ALL.len());
        for (s, e) in want {
            assert_eq!(execution_status(s), e, "{s}");
        }
    }

    #[test]
    fn artifacts_sit_in_the_root_of_the_delivery_url() {
        let t = "s3://b/out/<requestId>/<tileName>/<outputId>.<format>";
        assert_eq!(
            location(t, "execution-x.sqlite"),
            "s3://b/out/execution-x.sqlite"
        );
        assert_eq!(
            location("s3://b/<requestId>/<tileName>.tif", &request_json_name("r")),
            "s3://b/request-r.json"
        );
        assert_eq!(location("<tileName>.tif", "m.gpkg"), "m.gpkg");
        assert_eq!(feature_manifest_name("r"), "featureManifest-r.gpkg");
        assert_eq!(execution_db_name("r"), "execution-r.sqlite");
    }

    #[test]
    fn execution_db_rows() {
        let rows = vec![
            ExecutionRow {
                id: 7,
                name: "a".into(),
                status: TileStatus::Processed,
                error: None,
            },
            ExecutionRow {
                id: 8,
                name: "b".into(),
                status: TileStatus::Failed,
                error: Some("boom".into()),
            },
            ExecutionRow {
                id: 9,
                name: "c".into(),
                status: TileStatus::Scheduled,
                error: None,
            },
        ];
        let (_d, c) = open(&execution_db(&rows).unwrap());
        let got: Vec<(i64, String, String, Option<String>, bool)> = c
            .prepare("SELECT id, name, status, error, delivered FROM features ORDER BY id")
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            got,
            vec![
                (7, "a".into(), "DONE".into(), None, true),
                (8, "b".into(), "FATAL".into(), Some("boom".into()), false),
                (9, "c".into(), "PENDING".into(), None, false),
            ]
        );
    }

    #[test]
    fn feature_manifest_is_a_geopackage_with_a_table_per_crs() {
        let row = |epsg, x: f64, id: &str| ManifestRow {
            output_id: "default".into(),
            identifier: id.into(),
            path: format!("s3://b/{id}/default.tif"),
            width: 500,
            height: 500,
            epsg,
            bounds: [x, 5_000_000.0, x + 10_000.0, 5_010_000.0],
        };
        let rows = vec![
            row(32633, 500_000.0, "t1"),
            row(32633, 510_000.0, "t2"),
            row(32634, 300_000.0, "t3"),
        ];
        let (_d, c) = open(&feature_manifest(&rows).unwrap());
        let app: i64 = c
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .unwrap();
        assert_eq!(app, 0x4750_4B47);
        let tables: Vec<String> = c
            .prepare("SELECT table_name FROM gpkg_contents ORDER BY table_name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(tables, ["feature_32633", "feature_32634"]);
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM feature_32633", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
        let (min_x, max_x): (f64, f64) = c
            .query_row(
                "SELECT min_x, max_x FROM gpkg_contents WHERE table_name = 'feature_32633'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((min_x, max_x), (500_000.0, 520_000.0));
        let srs: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM gpkg_spatial_ref_sys WHERE srs_id IN (4326, 32633, 32634)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(srs, 3);
        assert!(matches!(
            feature_manifest(&[row(3035, 0.0, "x")]),
            Err(ArtifactError::UnsupportedCrs(3035))
        ));
    }
}
