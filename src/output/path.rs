//! Tile path templates (`output.defaultTilePath`, batch-api.md §10.1). Pure string work.
//!
//! Validation happens once, when a request is created ([`resolve_template`]); expansion per
//! tile and output ([`expand`]) then cannot fail.

use super::OutputError;

/// The layout appended to a plain prefix (no placeholders).
pub const DEFAULT_LAYOUT: &str = "<requestId>/<tileName>/<outputId>.<format>";

/// Every placeholder a template may use. `<taskId>` is the older spelling of `<requestId>`
/// that the overwrite documentation still mentions.
const PLACEHOLDERS: [&str; 6] = [
    "requestId",
    "taskId",
    "tileName",
    "tileId",
    "outputId",
    "format",
];

/// Turns `defaultTilePath` into a full template, checking it names each file uniquely.
///
/// A plain prefix `P` (no `<`) becomes `P/<requestId>/<tileName>/<outputId>.<format>`.
/// A template must name the tile (`<tileName>` or `<tileId>`) and, when the request has
/// more than one output, the output (`<outputId>`); otherwise files would overwrite each
/// other.
pub fn resolve_template(default_tile_path: &str, outputs: usize) -> Result<String, OutputError> {
    let invalid = |reason: String| OutputError::InvalidTemplate {
        template: default_tile_path.to_string(),
        reason,
    };
    if default_tile_path.trim().is_empty() {
        return Err(invalid("the path is empty".to_string()));
    }
    // Refused up front (a 400 at create time) rather than when the first tile is written;
    // the sink refuses them again for any location built another way.
    if default_tile_path
        .split(['/', '\\'])
        .any(|segment| segment == "..")
    {
        return Err(invalid(
            "'..' segments are not allowed: outputs stay under the given location".to_string(),
        ));
    }
    if !default_tile_path.contains('<') {
        if default_tile_path.contains('>') {
            return Err(invalid("'>' without a matching '<'".to_string()));
        }
        let prefix = default_tile_path.trim_end_matches('/');
        return Ok(format!("{prefix}/{DEFAULT_LAYOUT}"));
    }
    let used = placeholders(default_tile_path).map_err(invalid)?;
    if !used.iter().any(|p| *p == "tileName" || *p == "tileId") {
        return Err(invalid(
            "a template must contain <tileName> or <tileId> so each tile gets its own files"
                .to_string(),
        ));
    }
    if outputs > 1 && !used.contains(&"outputId") {
        return Err(invalid(format!(
            "the request has {outputs} outputs, so the template must contain <outputId>"
        )));
    }
    Ok(default_tile_path.to_string())
}

/// The placeholder names in `template`, in order; errors on unknown or unclosed ones.
fn placeholders(template: &str) -> Result<Vec<&str>, String> {
    let mut found = Vec::new();
    let mut rest = template;
    loop {
        let open = rest.find('<');
        let close = rest.find('>');
        match (open, close) {
            (None, None) => return Ok(found),
            (None, Some(_)) => return Err("'>' without a matching '<'".to_string()),
            (Some(o), Some(c)) if c < o => {
                return Err("'>' without a matching '<'".to_string());
            }
            (Some(_), None) => return Err("'<' without a closing '>'".to_string()),
            (Some(o), Some(c)) => {
                let name = &rest[o + 1..c];
                if !PLACEHOLDERS.contains(&name) {
                    return Err(format!(
                        "unknown placeholder <{name}>; known placeholders: {}",
                        PLACEHOLDERS.map(|p| format!("<{p}>")).join(", ")
                    ));
                }
                found.push(name);
                rest = &rest[c + 1..];
            }
        }
    }
}

/// The values substituted into a template for one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathVars<'a> {
    pub request_id: &'a str,
    pub tile_name: &'a str,
    pub tile_id: i64,
    pub output_id: &'a str,
    /// File extension without the dot; see [`extension_for_mime`].
    pub format: &'a str,
}

/// Substitutes every placeholder of a template accepted by [`resolve_template`].
///
/// One left-to-right pass, so values that themselves contain `<...>` are not expanded
/// again. Unknown placeholders (impossible after validation) are kept verbatim.
pub fn expand(template: &str, vars: &PathVars) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('>') else {
            out.push_str(after);
            return out;
        };
        let tile_id;
        let value = match &after[1..close] {
            "requestId" | "taskId" => vars.request_id,
            "tileName" => vars.tile_name,
            "tileId" => {
                tile_id = vars.tile_id.to_string();
                tile_id.as_str()
            }
            "outputId" => vars.output_id,
            "format" => vars.format,
            _ => &after[..=close],
        };
        out.push_str(value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The `<format>` extension of an output's MIME type: `tif` (what eo-grow globs for, not
/// the spec example's `tiff`), `json`, `png`, `jpg`. `None` for types with no file form.
pub fn extension_for_mime(mime: &str) -> Option<&'static str> {
    match mime {
        "image/tiff" => Some("tif"),
        "application/json" => Some("json"),
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpg"),
        _ => None,
    }
}

/// The `defaultTilePath` equivalent of the `bucketName` shorthand.
pub fn bucket_prefix(bucket: &str) -> String {
    format!("s3://{bucket}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: usize = 1;
    const TWO: usize = 2;

    fn vars() -> PathVars<'static> {
        PathVars {
            request_id: "9a1b",
            tile_name: "31UDS_7_2",
            tile_id: 10_452,
            output_id: "default",
            format: "tif",
        }
    }

    fn reason(result: Result<String, OutputError>) -> String {
        match result {
            Err(OutputError::InvalidTemplate { reason, .. }) => reason,
            other => panic!("expected InvalidTemplate, got {other:?}"),
        }
    }

    #[test]
    fn plain_prefixes_get_the_default_layout() {
        let cases = [
            (
                "s3://bucket",
                "s3://bucket/<requestId>/<tileName>/<outputId>.<format>",
            ),
            (
                "s3://bucket/",
                "s3://bucket/<requestId>/<tileName>/<outputId>.<format>",
            ),
            (
                "s3://b/some/folder",
                "s3://b/some/folder/<requestId>/<tileName>/<outputId>.<format>",
            ),
            (
                "/abs/out",
                "/abs/out/<requestId>/<tileName>/<outputId>.<format>",
            ),
            ("out//", "out/<requestId>/<tileName>/<outputId>.<format>"),
            (
                "file:///abs",
                "file:///abs/<requestId>/<tileName>/<outputId>.<format>",
            ),
        ];
        for (prefix, expected) in cases {
            assert_eq!(resolve_template(prefix, TWO).unwrap(), expected, "{prefix}");
        }
    }

    #[test]
    fn valid_templates_are_kept_verbatim() {
        let cases = [
            ("s3://b/<requestId>/<tileName>/<outputId>.<format>", TWO),
            ("s3://b/<tileId>.tif", ONE),
            ("s3://b/x/<tileName>-<outputId>", TWO),
            ("out/<taskId>/<tileId>/<outputId>.<format>", 5),
            ("<tileName>", 0),
        ];
        for (template, outputs) in cases {
            assert_eq!(resolve_template(template, outputs).unwrap(), template);
        }
    }

    #[test]
    fn templates_must_name_the_tile() {
        let r = reason(resolve_template(
            "s3://b/<requestId>/<outputId>.<format>",
            TWO,
        ));
        assert!(r.contains("<tileName> or <tileId>"), "{r}");
        let r = reason(resolve_template("s3://b/<requestId>.tif", ONE));
        assert!(r.contains("<tileName> or <tileId>"), "{r}");
    }

    #[test]
    fn several_outputs_need_output_id() {
        assert!(resolve_template("s3://b/<tileName>.<format>", ONE).is_ok());
        let r = reason(resolve_template("s3://b/<tileName>.<format>", 3));
        assert!(r.contains("3 outputs") && r.contains("<outputId>"), "{r}");
    }

    #[test]
    fn malformed_templates_are_rejected_with_a_reason() {
        let r = reason(resolve_template("s3://b/<tileName>/<outputID>", TWO));
        assert!(r.contains("unknown placeholder <outputID>"), "{r}");
        assert!(r.contains("<outputId>"), "lists known ones: {r}");
        let r = reason(resolve_template("s3://b/<tileName>/<outputId", TWO));
        assert!(r.contains("without a closing"), "{r}");
        let r = reason(resolve_template("s3://b/>x<tileName>", ONE));
        assert!(r.contains("without a matching"), "{r}");
        let r = reason(resolve_template("s3://b/x>", ONE));
        assert!(r.contains("without a matching"), "{r}");
        let r = reason(resolve_template("s3://b/<>/<tileName>", ONE));
        assert!(r.contains("unknown placeholder <>"), "{r}");
        let r = reason(resolve_template("  ", ONE));
        assert!(r.contains("empty"), "{r}");
        let err = resolve_template("", ONE).unwrap_err().to_string();
        assert!(
            err.starts_with("invalid output path template \"\""),
            "{err}"
        );
    }

    #[test]
    fn parent_segments_are_refused() {
        for path in [
            "../out",
            "s3://b/../x",
            "/abs/a/../b",
            "out/<tileName>/..",
            "file:///a/../b",
            "a\\..\\b",
        ] {
            let r = reason(resolve_template(path, ONE));
            assert!(r.contains("'..'"), "{path}: {r}");
        }
        // Dots inside names are fine.
        assert!(resolve_template("s3://b/v1..2/<tileName>.tif", ONE).is_ok());
        assert!(resolve_template("out/.hidden", ONE).is_ok());
    }

    #[test]
    fn expand_substitutes_every_placeholder() {
        let template = resolve_template("s3://bucket/run", TWO).unwrap();
        assert_eq!(
            expand(&template, &vars()),
            "s3://bucket/run/9a1b/31UDS_7_2/default.tif"
        );
        assert_eq!(
            expand("/o/<taskId>_<tileId>_<tileId>/<outputId>.<format>", &vars()),
            "/o/9a1b_10452_10452/default.tif"
        );
        let userdata = PathVars {
            output_id: "userdata",
            format: "json",
            tile_id: -3,
            ..vars()
        };
        assert_eq!(
            expand("<tileName>/<tileId>/<outputId>.<format>", &userdata),
            "31UDS_7_2/-3/userdata.json"
        );
    }

    #[test]
    fn expand_does_not_reexpand_values_and_keeps_unknowns() {
        let tricky = PathVars {
            tile_name: "<outputId>",
            ..vars()
        };
        assert_eq!(expand("a/<tileName>/b", &tricky), "a/<outputId>/b");
        assert_eq!(expand("a/<other>/<tileId>", &vars()), "a/<other>/10452");
        assert_eq!(expand("a/<tileId", &vars()), "a/<tileId");
        assert_eq!(expand("no placeholders", &vars()), "no placeholders");
    }

    #[test]
    fn mime_extensions() {
        assert_eq!(extension_for_mime("image/tiff"), Some("tif"));
        assert_eq!(extension_for_mime("application/json"), Some("json"));
        assert_eq!(extension_for_mime("image/png"), Some("png"));
        assert_eq!(extension_for_mime("image/jpeg"), Some("jpg"));
        assert_eq!(extension_for_mime("zarr/array"), None);
    }

    #[test]
    fn bucket_shorthand_is_an_s3_prefix() {
        assert_eq!(bucket_prefix("my-bucket"), "s3://my-bucket");
        assert_eq!(
            resolve_template(&bucket_prefix("b"), ONE).unwrap(),
            "s3://b/<requestId>/<tileName>/<outputId>.<format>"
        );
    }
}
