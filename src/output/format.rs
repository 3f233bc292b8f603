//! What to write for each output and whether to write it: the format chosen from
//! `responses[].format.type` and `cogOutput`/`cogParameters`, and the `overwrite` /
//! `skipExisting` rules of batch-api.md §10.2. Pure: the caller checks existence.

use serde_json::{Map, Value};

use super::cog::CogParams;
use super::geotiff::{encode_tiff, Compression, TiffOptions};
use super::image::{encode_jpeg, encode_png, DEFAULT_JPEG_QUALITY};
use super::OutputError;
use crate::raster::{Georef, Raster};

/// The encoder of one output.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputFormat {
    Tiff(TiffOptions),
    Png,
    Jpeg {
        quality: u8,
    },
    /// `userdata.json`, written with [`super::encode_userdata`].
    Json,
}

impl OutputFormat {
    /// Chooses the encoder for a response's MIME type. `application/json` is only for the
    /// `userdata` output; COG applies to TIFF outputs only.
    pub fn for_response(
        mime: &str,
        identifier: &str,
        options: &OutputOptions,
    ) -> Result<Self, OutputError> {
        let unsupported = |reason: &str| OutputError::UnsupportedFormat {
            identifier: identifier.to_string(),
            mime: mime.to_string(),
            reason: reason.to_string(),
        };
        match mime {
            "image/tiff" => Ok(OutputFormat::Tiff(TiffOptions {
                predictor: false,
                cog: options.cog.clone(),
                compression: Compression::server_default(),
            })),
            "image/png" | "image/jpeg" | "image/jpg" if options.cog.is_some() => Err(unsupported(
                "cogOutput writes TIFF only; use image/tiff for every output",
            )),
            "image/png" => Ok(OutputFormat::Png),
            "image/jpeg" | "image/jpg" => Ok(OutputFormat::Jpeg {
                quality: DEFAULT_JPEG_QUALITY,
            }),
            "application/json" if identifier == "userdata" => Ok(OutputFormat::Json),
            "application/json" => Err(unsupported(
                "application/json is only for the output with identifier 'userdata'",
            )),
            _ => Err(unsupported(
                "supported types are image/tiff, image/png, image/jpeg, and \
                 application/json for the userdata output",
            )),
        }
    }

    /// The `<format>` placeholder value.
    pub fn extension(&self) -> &'static str {
        match self {
            OutputFormat::Tiff(_) => "tif",
            OutputFormat::Png => "png",
            OutputFormat::Jpeg { .. } => "jpg",
            OutputFormat::Json => "json",
        }
    }

    /// Encodes a raster output. `Json` is not a raster format and is refused here.
    pub fn encode(
        &self,
        raster: &Raster,
        georef: &Georef,
        nodata: Option<f64>,
    ) -> Result<Vec<u8>, OutputError> {
        match self {
            OutputFormat::Tiff(options) => encode_tiff(raster, georef, nodata, options),
            OutputFormat::Png => encode_png(raster),
            OutputFormat::Jpeg { quality } => encode_jpeg(raster, *quality),
            OutputFormat::Json => Err(OutputError::InvalidRaster(
                "the userdata output is JSON, not a raster".into(),
            )),
        }
    }
}

/// The output options of a create body's `output` object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutputOptions {
    /// `cogOutput: true` with its (defaulted) `cogParameters`.
    pub cog: Option<CogParams>,
    pub overwrite: bool,
    pub skip_existing: bool,
}

impl OutputOptions {
    /// Reads `cogOutput`, `cogParameters`, `overwrite` and `skipExisting` from the
    /// `output` member of a create body (absent: all defaults).
    pub fn from_output(output: Option<&Value>) -> Result<Self, OutputError> {
        let empty = Map::new();
        let obj = match output {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(o)) => o,
            Some(_) => return Err(OutputError::InvalidCog("output must be an object".into())),
        };
        let flag = |key: &str| -> Result<bool, OutputError> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err(OutputError::InvalidOption(format!(
                    "output.{key} must be true or false"
                ))),
            }
        };
        let cog = if flag("cogOutput")? {
            Some(CogParams::from_json(obj.get("cogParameters"))?)
        } else if obj.get("cogParameters").is_some_and(|v| !v.is_null()) {
            return Err(OutputError::InvalidOption(
                "output.cogParameters needs output.cogOutput: true".into(),
            ));
        } else {
            None
        };
        Ok(OutputOptions {
            cog,
            overwrite: flag("overwrite")?,
            skip_existing: flag("skipExisting")?,
        })
    }
}

/// What to do with one tile, given which of its output files already exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExistingAction {
    Write,
    Skip,
    /// The request must fail with this message.
    Fail(String),
}

/// The rules of §10.2 for one tile. `existing` lists the locations of the tile's outputs
/// that already exist; `outputs` is how many outputs the tile has.
///
/// * nothing exists: write;
/// * everything exists: skip with `skipExisting`, else overwrite with `overwrite`, else fail;
/// * some exist: overwrite (all of them) with `overwrite`, else fail, even with
///   `skipExisting`.
pub fn decide_existing(
    overwrite: bool,
    skip_existing: bool,
    outputs: usize,
    existing: &[String],
) -> ExistingAction {
    if existing.is_empty() {
        return ExistingAction::Write;
    }
    let all = existing.len() >= outputs;
    match (all, skip_existing, overwrite) {
        (true, true, _) => ExistingAction::Skip,
        (_, _, true) => ExistingAction::Write,
        (true, false, false) => ExistingAction::Fail(format!(
            "output {} already exists; set output.overwrite to replace it or \
             output.skipExisting to skip such tiles",
            existing[0]
        )),
        (false, _, false) => ExistingAction::Fail(format!(
            "{} of the tile's {outputs} outputs already exist (first: {}); a partly \
             written tile is only replaced with output.overwrite",
            existing.len(),
            existing[0]
        )),
    }
}

/// Above this many estimated output files, existence is not checked (§10.2).
pub const EXISTENCE_CHECK_LIMIT: u64 = 5000;

/// Whether the engine must check existing files before writing, or why the request is
/// refused. `template` is the resolved path template.
///
/// No check is needed with `overwrite` and without `skipExisting` (everything is written),
/// nor when the path contains `<requestId>` (a fresh id cannot collide). Otherwise a job
/// of `EXISTENCE_CHECK_LIMIT` files or more is refused, as the service does.
pub fn existence_check_needed(
    template: &str,
    options: &OutputOptions,
    estimated_files: u64,
) -> Result<bool, OutputError> {
    if options.overwrite && !options.skip_existing {
        return Ok(false);
    }
    if template.contains("<requestId>") || template.contains("<taskId>") {
        return Ok(false);
    }
    if estimated_files >= EXISTENCE_CHECK_LIMIT {
        return Err(OutputError::InvalidOption(format!(
            "about {estimated_files} output files is too many to check for existing ones \
             (limit {EXISTENCE_CHECK_LIMIT}); put <requestId> in the path, or set \
             overwrite: true and skipExisting: false"
        )));
    }
    Ok(true)
}

/// The folder to list once for the existence checks of a whole request: the template up
/// to the last `/` before its first placeholder (`s3://b/run/<tileName>/x.tif` ->
/// `s3://b/run`), never cutting into `scheme://`. Expanded locations of the template all
/// start with it, so a listing of it (see [`super::Sinks::list`]) can be matched against
/// them exactly.
pub fn listing_prefix(template: &str) -> &str {
    let literal = &template[..template.find('<').unwrap_or(template.len())];
    let floor = literal.find("://").map_or(0, |i| i + 3);
    match literal[floor..].rfind('/') {
        Some(i) => &literal[..floor + i],
        None => &literal[..floor],
    }
}

/// The §10.2 decision for every tile of a request at once (the analysis-time check of
/// requests under [`EXISTENCE_CHECK_LIMIT`] files): `tiles` holds each tile's output
/// locations, `listed` the locations that exist. Returns how many tiles will be skipped,
/// or the message of the first tile that makes the request fail.
pub fn check_existing_tiles(
    tiles: &[Vec<String>],
    listed: &std::collections::HashSet<String>,
    options: &OutputOptions,
) -> Result<usize, String> {
    let mut skipped = 0;
    for outputs in tiles {
        let existing: Vec<String> = outputs
            .iter()
            .filter(|p| listed.contains(*p))
            .cloned()
            .collect();
        match decide_existing(
            options.overwrite,
            options.skip_existing,
            outputs.len(),
            &existing,
        ) {
            ExistingAction::Write => {}
            ExistingAction::Skip => skipped += 1,
            ExistingAction::Fail(message) => return Err(message),
        }
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn existing(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("s3://b/t/o{i}.tif")).collect()
    }

    #[test]
    fn existing_rules_of_section_10_2() {
        use ExistingAction::*;
        // (overwrite, skipExisting, outputs, existing) -> action
        let cases = [
            (false, false, 2, 0, "write"),
            (false, false, 2, 1, "fail"),
            (false, false, 2, 2, "fail"),
            (true, false, 2, 1, "write"),
            (true, false, 2, 2, "write"),
            (false, true, 2, 2, "skip"),
            (false, true, 2, 1, "fail"),
            (false, true, 2, 0, "write"),
            (true, true, 2, 2, "skip"),
            (true, true, 2, 1, "write"),
            (true, true, 1, 0, "write"),
        ];
        for (overwrite, skip, outputs, n, want) in cases {
            let got = decide_existing(overwrite, skip, outputs, &existing(n));
            let name = match &got {
                Write => "write",
                Skip => "skip",
                Fail(_) => "fail",
            };
            assert_eq!(
                name, want,
                "overwrite={overwrite} skip={skip} {n}/{outputs}"
            );
        }
        let Fail(msg) = decide_existing(false, true, 3, &existing(1)) else {
            panic!("partial tile without overwrite must fail");
        };
        assert!(
            msg.contains("1 of the tile's 3") && msg.contains("s3://b/t/o0.tif"),
            "{msg}"
        );
        let Fail(msg) = decide_existing(false, false, 1, &existing(1)) else {
            panic!("existing file without flags must fail");
        };
        assert!(
            msg.contains("already exists") && msg.contains("overwrite"),
            "{msg}"
        );
    }

    #[test]
    fn options_from_the_output_object() {
        assert_eq!(
            OutputOptions::from_output(None).unwrap(),
            OutputOptions::default()
        );
        let o = OutputOptions::from_output(Some(&json!({
            "defaultTilePath": "s3://b", "cogOutput": true,
            "cogParameters": {"blockxsize": 256}, "overwrite": true, "skipExisting": true
        })))
        .unwrap();
        assert_eq!(o.cog.as_ref().map(|c| c.block_x), Some(256));
        assert_eq!(o.cog.as_ref().map(|c| c.block_y), Some(1024));
        assert!(o.overwrite && o.skip_existing);
        let plain = OutputOptions::from_output(Some(&json!({"cogOutput": false}))).unwrap();
        assert!(plain.cog.is_none());
        let err = OutputOptions::from_output(Some(&json!({"overwrite": "yes"}))).unwrap_err();
        assert!(err
            .to_string()
            .contains("output.overwrite must be true or false"));
        let err = OutputOptions::from_output(Some(&json!({"cogParameters": {}}))).unwrap_err();
        assert!(err.to_string().contains("cogOutput"));
    }

    #[test]
    fn formats_by_mime_type() {
        let plain = OutputOptions::default();
        let cog = OutputOptions {
            cog: Some(CogParams::default()),
            ..OutputOptions::default()
        };
        let f = |mime, id, o| OutputFormat::for_response(mime, id, o);
        assert_eq!(
            f("image/tiff", "default", &plain).unwrap().extension(),
            "tif"
        );
        assert_eq!(
            f("image/png", "default", &plain).unwrap(),
            OutputFormat::Png
        );
        assert_eq!(f("image/jpeg", "rgb", &plain).unwrap().extension(), "jpg");
        assert_eq!(
            f("application/json", "userdata", &plain).unwrap(),
            OutputFormat::Json
        );
        let OutputFormat::Tiff(t) = f("image/tiff", "default", &cog).unwrap() else {
            panic!("tiff expected");
        };
        assert!(t.cog.is_some());
        let err = f("image/webp", "default", &plain).unwrap_err().to_string();
        assert!(
            err.contains("'default'") && err.contains("image/webp"),
            "{err}"
        );
        assert!(f("application/json", "default", &plain).is_err());
        assert!(f("image/png", "default", &cog)
            .unwrap_err()
            .to_string()
            .contains("TIFF only"));
    }

    #[test]
    fn existence_check_policy() {
        let o = |overwrite, skip_existing| OutputOptions {
            overwrite,
            skip_existing,
            ..OutputOptions::default()
        };
        let fixed = "s3://b/<tileName>/<outputId>.<format>";
        let unique = "s3://b/<requestId>/<tileName>/<outputId>.<format>";
        assert!(!existence_check_needed(fixed, &o(true, false), 1_000_000).unwrap());
        assert!(!existence_check_needed(unique, &o(false, false), 1_000_000).unwrap());
        assert!(existence_check_needed(fixed, &o(false, false), 4999).unwrap());
        assert!(existence_check_needed(fixed, &o(true, true), 10).unwrap());
        let err = existence_check_needed(fixed, &o(false, true), 5000).unwrap_err();
        assert!(err.to_string().contains("5000"), "{err}");
    }

    #[test]
    fn listing_prefix_stops_before_the_first_placeholder() {
        let cases = [
            ("s3://b/run/<tileName>/<outputId>.<format>", "s3://b/run"),
            (
                "s3://b/<requestId>/<tileName>/<outputId>.<format>",
                "s3://b",
            ),
            ("s3://b/x-<tileName>.tif", "s3://b"),
            ("gs://bucket/a/b/c_<tileId>.tif", "gs://bucket/a/b"),
            ("/data/out/<tileName>.tif", "/data/out"),
            ("out/<tileName>.tif", "out"),
            ("<tileName>.tif", ""),
            ("file:///<tileName>.tif", "file://"),
            ("file:///srv/r/<tileName>.tif", "file:///srv/r"),
            ("s3://b/fixed.tif", "s3://b"),
        ];
        for (template, want) in cases {
            assert_eq!(listing_prefix(template), want, "{template}");
        }
    }

    #[test]
    fn all_tiles_are_decided_from_one_listing() {
        let tiles: Vec<Vec<String>> = (0..3)
            .map(|t| vec![format!("s3://b/t{t}/a.tif"), format!("s3://b/t{t}/b.tif")])
            .collect();
        let listed = |items: &[&str]| -> std::collections::HashSet<String> {
            items.iter().map(|s| s.to_string()).collect()
        };
        let o = |overwrite, skip_existing| OutputOptions {
            overwrite,
            skip_existing,
            ..OutputOptions::default()
        };
        // Nothing there, or only unrelated files: every tile is written.
        assert_eq!(
            check_existing_tiles(&tiles, &listed(&[]), &o(false, false)),
            Ok(0)
        );
        let unrelated = listed(&["s3://b/t0/c.tif", "s3://b/t1"]);
        assert_eq!(
            check_existing_tiles(&tiles, &unrelated, &o(false, false)),
            Ok(0)
        );
        // Two complete tiles, skipExisting: both skipped.
        let two = listed(&[
            "s3://b/t0/a.tif",
            "s3://b/t0/b.tif",
            "s3://b/t2/a.tif",
            "s3://b/t2/b.tif",
        ]);
        assert_eq!(check_existing_tiles(&tiles, &two, &o(false, true)), Ok(2));
        // Same without flags: the request fails naming the first existing file.
        let err = check_existing_tiles(&tiles, &two, &o(false, false)).unwrap_err();
        assert!(err.contains("s3://b/t0/a.tif"), "{err}");
        // A partial tile fails even with skipExisting, and is fine with overwrite.
        let partial = listed(&["s3://b/t1/b.tif"]);
        let err = check_existing_tiles(&tiles, &partial, &o(false, true)).unwrap_err();
        assert!(err.contains("1 of the tile's 2"), "{err}");
        assert_eq!(
            check_existing_tiles(&tiles, &partial, &o(true, true)),
            Ok(0)
        );
    }
}
