//! Where a client's outputs may go (issue 12): the syntax of output locations, segment by
//! segment, and the scope check against the operator's allowed prefixes and grants. Pure:
//! the sink opens what this module accepted, one segment at a time, without following
//! symbolic links.
//!
//! The rules, in the order a location meets them:
//!
//! * every path segment (and every template value: an output identifier, a tile name) is
//!   exactly one segment: not empty, not `.` or `..`, no `/`, `\`, NUL or other control
//!   character, no percent-escape of any of those (nor of `.` or `%`, so `%2e%2e` and
//!   `%252e` are refused too), at most [`MAX_SEGMENT_BYTES`] bytes; a whole location is at
//!   most [`MAX_LOCATION_BYTES`] bytes;
//! * `file://` URLs are decoded segment by segment *after* splitting on `/`, so an encoded
//!   `/` or `..` can never become a separator or a parent step (URL parsers fold `%2e%2e`
//!   into `..`, which is how issue 12 escaped one level);
//! * a relative path lives under the client's own folder and is always allowed; an
//!   absolute path (or `file://`) only under a prefix the operator allowed; an `s3://`,
//!   `gs://` or `az://` location only under a bucket (and key prefix) granted to the client.

use std::fmt;

/// Longest path segment, in bytes: the usual 255-byte file-name limit less the 9 bytes of
/// the staging name `.<name>.partial`, so every accepted name can be written atomically.
pub const MAX_SEGMENT_BYTES: usize = 246;
/// Longest output location, in bytes.
pub const MAX_LOCATION_BYTES: usize = 1024;

/// The object stores a location can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    S3,
    Gs,
    Az,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::S3 => "s3",
            Scheme::Gs => "gs",
            Scheme::Az => "az",
        }
    }
}

/// An output location (or a prefix of one) split into checked segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Under the client's own folder (the base directory for the operator's own runs).
    Relative(Vec<String>),
    /// A local absolute path, written `/a/b` or `file:///a/b` (decoded).
    Absolute(Vec<String>),
    /// `scheme://bucket/key...`.
    Object {
        scheme: Scheme,
        bucket: String,
        key: Vec<String>,
    },
}

impl Location {
    /// The segments below the root (the key of an object).
    pub fn segments(&self) -> &[String] {
        match self {
            Location::Relative(s) | Location::Absolute(s) => s,
            Location::Object { key, .. } => key,
        }
    }

    /// Whether `self` is `prefix` or lies below it, segment by segment (`s3://b/team`
    /// does not cover `s3://b/team-b`).
    pub fn is_under(&self, prefix: &Location) -> bool {
        let starts = |a: &[String], p: &[String]| a.len() >= p.len() && a[..p.len()] == *p;
        match (self, prefix) {
            (Location::Relative(a), Location::Relative(p))
            | (Location::Absolute(a), Location::Absolute(p)) => starts(a, p),
            (
                Location::Object {
                    scheme,
                    bucket,
                    key,
                },
                Location::Object {
                    scheme: ps,
                    bucket: pb,
                    key: pk,
                },
            ) => scheme == ps && bucket == pb && starts(key, pk),
            _ => false,
        }
    }
}

impl fmt::Display for Location {
    /// The canonical spelling: `a/b`, `/a/b`, `s3://bucket/a/b`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Relative(s) => write!(f, "{}", s.join("/")),
            Location::Absolute(s) => write!(f, "/{}", s.join("/")),
            Location::Object {
                scheme,
                bucket,
                key,
            } if key.is_empty() => write!(f, "{}://{bucket}", scheme.as_str()),
            Location::Object {
                scheme,
                bucket,
                key,
            } => write!(f, "{}://{bucket}/{}", scheme.as_str(), key.join("/")),
        }
    }
}

/// Why `value` cannot be one path segment, or `Ok` when it can.
pub fn check_segment(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("empty path segment (a doubled or leading '/')".into());
    }
    if value == "." || value == ".." {
        return Err(format!(
            "'{value}' segments are not allowed: outputs stay under their location"
        ));
    }
    if value.len() > MAX_SEGMENT_BYTES {
        return Err(format!(
            "a path segment is {} bytes long; at most {MAX_SEGMENT_BYTES} are allowed",
            value.len()
        ));
    }
    if let Some(c) = value.chars().find(|c| matches!(c, '/' | '\\')) {
        return Err(format!("'{c}' inside a path segment"));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!(
            "control character U+{:04X} in a path segment",
            c as u32
        ));
    }
    if let Some(escape) = forbidden_escape(value) {
        return Err(format!(
            "percent-escape '{escape}' in a path segment (an encoded separator, dot, \
             percent sign or control character)"
        ));
    }
    Ok(())
}

/// The first `%XX` in `value` that encodes `/`, `\`, `.`, `%` or a control character.
fn forbidden_escape(value: &str) -> Option<&str> {
    let bytes = value.as_bytes();
    (0..bytes.len().saturating_sub(2)).find_map(|i| {
        if bytes[i] != b'%' {
            return None;
        }
        let decoded = hex(bytes[i + 1])? << 4 | hex(bytes[i + 2])?;
        let bad = decoded < 0x20 || matches!(decoded, 0x7f | b'/' | b'\\' | b'.' | b'%');
        bad.then(|| &value[i..i + 3])
    })
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decodes one `file://` segment; refuses escapes that are not UTF-8 text.
fn decode_segment(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let pair = bytes
                .get(i + 1)
                .and_then(|&a| Some(hex(a)? << 4 | hex(*bytes.get(i + 2)?)?));
            let Some(b) = pair else {
                return Err(format!("'%' not followed by two hex digits in {raw:?}"));
            };
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{raw:?} does not decode to UTF-8 text"))
}

/// Splits `path` on `/` and checks every segment; `decode` percent-decodes each first
/// (for `file://`).
fn segments(path: &str, decode: bool) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    path.split('/')
        .map(|raw| {
            let segment = if decode {
                // The raw form is checked too: `%252e` decodes to `%2e`, refused below.
                check_segment(raw)?;
                decode_segment(raw)?
            } else {
                raw.to_string()
            };
            check_segment(&segment)?;
            Ok(segment)
        })
        .collect()
}

/// A bucket or container name: letters, digits, `.`, `-`, `_`, and not `.` or `..`.
fn check_bucket(bucket: &str) -> Result<(), String> {
    let ok = !bucket.is_empty()
        && bucket != "."
        && bucket != ".."
        && bucket.len() <= MAX_SEGMENT_BYTES
        && bucket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{bucket:?} is not a bucket name (letters, digits, '.', '-', '_')"
        ))
    }
}

/// Parses an output location that names a file. See the module documentation for the
/// rules; the error is the reason, to be shown with the location.
pub fn parse_location(location: &str) -> Result<Location, String> {
    if location.ends_with('/') {
        return Err("the location must end with a file name".into());
    }
    let parsed = parse(location)?;
    if parsed.segments().is_empty() {
        return Err(match parsed {
            Location::Object { .. } => "an object location needs a key after the bucket".into(),
            _ => "the location must end with a file name".into(),
        });
    }
    Ok(parsed)
}

/// Parses a folder: a location prefix, an allowed prefix or a grant. Trailing `/` are
/// ignored and it may be empty below its root (`s3://bucket`, `/`, ``).
pub fn parse_prefix(prefix: &str) -> Result<Location, String> {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.ends_with(':') && prefix.ends_with("//") {
        // `s3://` or `file:///` alone: keep the separator so the scheme is recognised.
        return parse(prefix);
    }
    if trimmed.is_empty() {
        return Ok(if prefix.starts_with('/') {
            Location::Absolute(Vec::new())
        } else {
            Location::Relative(Vec::new())
        });
    }
    parse(trimmed)
}

fn parse(location: &str) -> Result<Location, String> {
    if location.len() > MAX_LOCATION_BYTES {
        return Err(format!(
            "the location is {} bytes long; at most {MAX_LOCATION_BYTES} are allowed",
            location.len()
        ));
    }
    if location.chars().any(char::is_control) {
        // Checked before splitting so a newline never reaches a message unescaped.
        let c = location.chars().find(|c| c.is_control()).unwrap_or('\0');
        return Err(format!(
            "control character U+{:04X} in the location",
            c as u32
        ));
    }
    let Some((scheme, rest)) = location.split_once("://") else {
        if location.trim().is_empty() {
            return Err("the location is empty".into());
        }
        return Ok(match location.strip_prefix('/') {
            Some(abs) => Location::Absolute(segments(abs, false)?),
            None => Location::Relative(segments(location, false)?),
        });
    };
    let object = |scheme| -> Result<Location, String> {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(bucket)?;
        Ok(Location::Object {
            scheme,
            bucket: bucket.to_string(),
            key: segments(key, false)?,
        })
    };
    match scheme.to_ascii_lowercase().as_str() {
        "file" => {
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
                return Err("a file URL must be file:///absolute/path on this machine".into());
            }
            if path.contains(['?', '#']) {
                return Err("a file URL cannot have a query ('?') or fragment ('#')".into());
            }
            Ok(Location::Absolute(segments(path, true)?))
        }
        "s3" => object(Scheme::S3),
        "gs" => object(Scheme::Gs),
        "az" => object(Scheme::Az),
        _ => Err(
            "only relative paths, absolute paths, file://, s3://, gs:// and az:// \
                  locations are supported"
                .into(),
        ),
    }
}

/// Checks a path template (after `path::resolve_template`) at create time: placeholders
/// only in the path below the bucket or root, never completing a percent-escape, and
/// every segment of every output's expansion a valid segment within the length limits
/// (checked with worst-case values for the tile). Returns the literal folder the template
/// starts with, which the scope must allow.
pub fn check_template(template: &str, output_ids: &[&str]) -> Result<Location, String> {
    let first = template.find('<').unwrap_or(template.len());
    let literal = &template[..first];
    if let Some((scheme, rest)) = literal.split_once("://") {
        // `s3://b<tileName>/` or `file://<tileName>/`: the bucket (host) is literal.
        if !rest.contains('/') && first < template.len() {
            return Err(format!(
                "placeholders cannot be part of the {} name",
                if scheme.eq_ignore_ascii_case("file") {
                    "host"
                } else {
                    "bucket"
                }
            ));
        }
    }
    for (i, _) in template.match_indices('<') {
        let before = &template.as_bytes()[..i];
        let escape = before.ends_with(b"%")
            || (before.len() >= 2
                && before[before.len() - 2] == b'%'
                && hex(before[before.len() - 1]).is_some());
        if escape {
            return Err("a placeholder cannot complete a percent-escape".into());
        }
    }
    // The longest values a tile can give, so the length limits hold for every tile.
    const REQUEST_ID: &str = "00000000-0000-0000-0000-000000000000";
    let tile_name = "X".repeat(64);
    let ids: &[&str] = if output_ids.is_empty() {
        &["default"]
    } else {
        output_ids
    };
    for id in ids {
        let expanded = super::path::expand(
            template,
            &super::path::PathVars {
                request_id: REQUEST_ID,
                tile_name: &tile_name,
                tile_id: i64::MIN,
                output_id: id,
                format: "json",
            },
        );
        parse_location(&expanded)?;
    }
    let folder = match literal.rfind('/') {
        Some(0) => "/",
        Some(i) => &literal[..i],
        None => "",
    };
    parse_prefix(folder)
}

/// Where one client may write: its own folder always, plus these prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope {
    /// Absolute-path prefixes (the operator's `--allow-output-prefix` and the client's
    /// local grants) and object prefixes (the client's bucket grants).
    pub allowed: Vec<Location>,
}

impl Scope {
    /// `Ok` when `location` (a file or a folder) may be written by this client; else why
    /// not, naming it.
    pub fn check(&self, location: &Location) -> Result<(), String> {
        match location {
            Location::Relative(_) => Ok(()),
            _ if self.allowed.iter().any(|p| location.is_under(p)) => Ok(()),
            Location::Absolute(_) => Err(format!(
                "absolute paths and file:// URLs are not allowed: outputs go under your own \
                 folder, so use a relative path (e.g. 'results'); the operator can allow a \
                 prefix with --allow-output-prefix or `tessera clients grant` ({location} is \
                 not under one)"
            )),
            Location::Object { scheme, .. } => Err(format!(
                "{location} is not granted to this client; the operator grants buckets with \
                 `tessera clients grant <client id> {}://<bucket>[/prefix]`",
                scheme.as_str()
            )),
        }
    }
}

/// Parses a grant or an allowed prefix as the operator writes it: `/abs/prefix`,
/// `file:///abs/prefix`, `s3://bucket[/prefix]`, `gs://...`, `az://...`. Relative paths
/// are refused (a client's own folder needs no grant).
pub fn parse_grant(grant: &str) -> Result<Location, String> {
    let location = parse_prefix(grant)?;
    if matches!(location, Location::Relative(_)) {
        return Err(format!(
            "{grant:?} is relative; grant an absolute path, file:///path, s3://bucket, \
             gs://bucket or az://container"
        ));
    }
    Ok(location)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn refused(location: &str) -> String {
        match parse_location(location) {
            Err(reason) => reason,
            Ok(l) => panic!("{location:?} was accepted as {l:?}"),
        }
    }

    #[test]
    fn segments_accept_ordinary_names() {
        for ok in [
            "a",
            "default.tif",
            "31UDS_7_2",
            "-3",
            "v1..2",
            ".hidden",
            "a b",
            "a%20b",
            "100%",
            "%zz",
            "é",
            &"x".repeat(246),
        ] {
            assert_eq!(check_segment(ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn segments_refuse_separators_dots_controls_escapes_and_length() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            (".", "'.'"),
            ("..", "'..'"),
            ("a/b", "'/'"),
            ("a\\b", "'\\'"),
            ("a\0b", "U+0000"),
            ("a\nb", "U+000A"),
            ("\r", "U+000D"),
            ("\t", "U+0009"),
            ("\u{7f}", "U+007F"),
            ("\u{85}", "U+0085"),
            ("%2e%2e", "'%2e'"),
            ("%2E", "'%2E'"),
            ("a%2fb", "'%2f'"),
            ("a%2Fb", "'%2F'"),
            ("a%5cb", "'%5c'"),
            ("%00", "'%00'"),
            ("%0a", "'%0a'"),
            ("%7f", "'%7f'"),
            ("%252e", "'%25'"),
        ];
        for (value, needle) in cases {
            let reason = check_segment(value).unwrap_err();
            assert!(reason.contains(needle), "{value:?}: {reason}");
        }
        let long = "x".repeat(247);
        assert!(check_segment(&long).unwrap_err().contains("247 bytes"));
    }

    #[test]
    fn locations_parse_into_their_kinds() {
        assert_eq!(
            parse_location("out/run/x.tif"),
            Ok(Location::Relative(s(&["out", "run", "x.tif"])))
        );
        assert_eq!(
            parse_location("/srv/out/x.tif"),
            Ok(Location::Absolute(s(&["srv", "out", "x.tif"])))
        );
        assert_eq!(
            parse_location("file:///srv/my%20dir/x.tif"),
            Ok(Location::Absolute(s(&["srv", "my dir", "x.tif"])))
        );
        assert_eq!(
            parse_location("FILE://localhost/a.tif"),
            Ok(Location::Absolute(s(&["a.tif"])))
        );
        assert_eq!(
            parse_location("s3://bucket/k/x.tif"),
            Ok(Location::Object {
                scheme: Scheme::S3,
                bucket: "bucket".into(),
                key: s(&["k", "x.tif"])
            })
        );
        // S3 keys are literal: no decoding.
        assert_eq!(
            parse_location("s3://b/a%20b.tif").unwrap().segments(),
            s(&["a%20b.tif"])
        );
        assert!(matches!(
            parse_location("GS://b/x"),
            Ok(Location::Object {
                scheme: Scheme::Gs,
                ..
            })
        ));
        assert!(matches!(
            parse_location("az://c/x"),
            Ok(Location::Object {
                scheme: Scheme::Az,
                ..
            })
        ));
    }

    #[test]
    fn the_escapes_of_issue_12_are_refused() {
        let cases: &[(&str, &str)] = &[
            ("../x.tif", "'..'"),
            ("a/../../x.tif", "'..'"),
            ("a/./x.tif", "'.'"),
            ("a\\..\\x.tif", "'\\'"),
            ("/srv/../etc/x", "'..'"),
            ("file:///srv/%2e%2e/etc/x", "'%2e'"),
            ("file:///srv/%2E%2E/x", "'%2E'"),
            ("file:///srv/a%2fb/x", "'%2f'"),
            ("file:///srv/%252e%252e/x", "'%25'"),
            ("file:///srv/.%2e/x", "'%2e'"),
            ("s3://bucket//tmp/x", "empty"),
            ("s3://bucket/a//x", "empty"),
            ("s3://bucket/../x", "'..'"),
            ("s3://bucket/%2e%2e/x", "'%2e'"),
            ("s3://../x", "not a bucket name"),
            ("s3:///x", "not a bucket name"),
            ("s3://b%2f/x", "not a bucket name"),
            ("out//x.tif", "empty"),
            ("out/x\0.tif", "U+0000"),
            ("out/x\n.sh", "U+000A"),
            ("file://otherhost/x", "file:///"),
            ("file:///x?y", "query"),
            ("file:///x#y", "fragment"),
            ("file:///a/%zz", "two hex digits"),
            ("file:///a/%ff", "UTF-8"),
            ("https://h/x", "only relative"),
            ("", "empty"),
            ("   ", "empty"),
            ("out/", "file name"),
            ("/", "file name"),
            ("s3://bucket", "key after the bucket"),
            ("s3://bucket/", "file name"),
        ];
        for (location, needle) in cases {
            let reason = refused(location);
            assert!(reason.contains(needle), "{location:?}: {reason}");
        }
        let long = format!("out/{}x", "a/".repeat(600));
        assert!(refused(&long).contains("at most 1024"));
    }

    #[test]
    fn prefixes_may_be_folders_and_roots() {
        assert_eq!(parse_prefix(""), Ok(Location::Relative(vec![])));
        assert_eq!(parse_prefix("run/"), Ok(Location::Relative(s(&["run"]))));
        assert_eq!(parse_prefix("/"), Ok(Location::Absolute(vec![])));
        assert_eq!(
            parse_prefix("/srv/out//"),
            Ok(Location::Absolute(s(&["srv", "out"])))
        );
        assert_eq!(
            parse_prefix("s3://b"),
            Ok(Location::Object {
                scheme: Scheme::S3,
                bucket: "b".into(),
                key: vec![]
            })
        );
        assert_eq!(parse_prefix("s3://b/p/").unwrap().segments(), s(&["p"]));
        assert_eq!(
            parse_prefix("file:///").unwrap(),
            Location::Absolute(vec![])
        );
        assert!(parse_prefix("s3://").is_err());
        assert!(parse_prefix("a/../b").is_err());
    }

    #[test]
    fn display_is_canonical() {
        for (input, shown) in [
            ("a/b", "a/b"),
            ("/a/b", "/a/b"),
            ("file:///a/b%20c", "/a/b c"),
            ("S3://b/k", "s3://b/k"),
            ("s3://b", "s3://b"),
        ] {
            assert_eq!(parse_prefix(input).unwrap().to_string(), shown, "{input}");
        }
    }

    #[test]
    fn is_under_compares_whole_segments_of_the_same_kind() {
        let p = |x: &str| parse_prefix(x).unwrap();
        assert!(p("s3://b/team/x").is_under(&p("s3://b/team")));
        assert!(p("s3://b/team").is_under(&p("s3://b/team")));
        assert!(p("s3://b/x").is_under(&p("s3://b")));
        assert!(!p("s3://b/team-b/x").is_under(&p("s3://b/team")));
        assert!(!p("s3://b/x").is_under(&p("s3://b/x/y")));
        assert!(!p("s3://c/team/x").is_under(&p("s3://b/team")));
        assert!(!p("gs://b/team/x").is_under(&p("s3://b/team")));
        assert!(p("/srv/out/a").is_under(&p("/srv/out")));
        assert!(p("file:///srv/out/a").is_under(&p("/srv/out/")));
        assert!(!p("/srv/outside/a").is_under(&p("/srv/out")));
        assert!(p("/anything").is_under(&p("/")));
        assert!(!p("/srv/a").is_under(&p("s3://srv")));
        assert!(!p("srv/a").is_under(&p("/srv")));
    }

    #[test]
    fn scope_allows_relative_paths_and_only_allowed_prefixes() {
        let scope = Scope {
            allowed: vec![
                parse_grant("/srv/shared").unwrap(),
                parse_grant("s3://team-a/out").unwrap(),
                parse_grant("gs://g").unwrap(),
            ],
        };
        let check = |l: &str| scope.check(&parse_prefix(l).unwrap());
        assert!(check("results/x.tif").is_ok());
        assert!(check("").is_ok());
        assert!(check("/srv/shared/a/x.tif").is_ok());
        assert!(check("file:///srv/shared/x.tif").is_ok());
        assert!(check("s3://team-a/out/r/x.tif").is_ok());
        assert!(check("gs://g/anything").is_ok());
        let e = check("/etc/profile.d/x.sh").unwrap_err();
        assert!(
            e.contains("absolute") && e.contains("/etc/profile.d/x.sh"),
            "{e}"
        );
        let e = check("s3://team-a/other/x").unwrap_err();
        assert!(e.contains("s3://team-a/other/x is not granted"), "{e}");
        let e = check("s3://team-b/out/x").unwrap_err();
        assert!(e.contains("tessera clients grant"), "{e}");
        let e = check("az://c/x").unwrap_err();
        assert!(e.contains("az://<bucket>"), "{e}");
        assert!(Scope::default()
            .check(&parse_prefix("/tmp/x").unwrap())
            .is_err());
    }

    #[test]
    fn grants_are_absolute_or_objects() {
        assert!(parse_grant("results").unwrap_err().contains("relative"));
        assert!(parse_grant("").is_err());
        assert!(parse_grant("s3://b/../x").is_err());
        assert!(parse_grant("ftp://x").is_err());
        assert_eq!(
            parse_grant("file:///srv/x/").unwrap(),
            Location::Absolute(s(&["srv", "x"]))
        );
    }

    #[test]
    fn templates_give_their_literal_folder() {
        let folder = |t: &str| check_template(t, &["default"]).map(|l| l.to_string());
        assert_eq!(
            folder("s3://b/run/<requestId>/<tileName>/<outputId>.<format>").unwrap(),
            "s3://b/run"
        );
        assert_eq!(folder("s3://b/<tileName>.tif").unwrap(), "s3://b");
        assert_eq!(folder("out/<tileName>.tif").unwrap(), "out");
        assert_eq!(folder("<tileName>.tif").unwrap(), "");
        assert_eq!(folder("/srv/o/<tileId>/x.tif").unwrap(), "/srv/o");
        assert_eq!(folder("/<tileId>.tif").unwrap(), "/");
        assert_eq!(folder("file:///srv/<tileId>.tif").unwrap(), "/srv");
        assert_eq!(folder("file:///<tileId>.tif").unwrap(), "/");
        assert_eq!(folder("out/x-<tileName>/y.tif").unwrap(), "out");
    }

    #[test]
    fn templates_are_refused_where_an_expansion_would_be() {
        let reason = |t: &str, ids: &[&str]| check_template(t, ids).unwrap_err();
        assert!(reason("s3://b<tileName>/x", &[]).contains("bucket"));
        assert!(reason("file://<tileName>/x", &[]).contains("host"));
        assert!(reason("out/%2<tileId>", &[]).contains("percent-escape"));
        assert!(reason("out/%<tileId>", &[]).contains("percent-escape"));
        assert!(reason("out/<tileName>/", &[]).contains("file name"));
        assert!(reason("out//<tileName>", &[]).contains("empty"));
        assert!(reason("out/%2e%2e/<tileName>", &[]).contains("'%2e'"));
        assert!(reason("out/\n/<tileName>", &[]).contains("U+000A"));
        // Values: a hostile output identifier, and lengths with the longest values.
        assert!(reason("out/<tileName>/<outputId>", &["a", "..", "b"]).contains("'..'"));
        let long = "x".repeat(200);
        assert!(reason(&format!("out/{long}<tileName>"), &[]).contains("at most 246"));
        let deep = format!("{}<tileName>", "abc/".repeat(250));
        assert!(reason(&deep, &[]).contains("at most 1024"));
        // The issue's profile.d trick is a valid template; the scope refuses it.
        let folder = check_template("/etc/profile.d/<tileId>.sh", &[]).unwrap();
        assert!(Scope::default().check(&folder).is_err());
    }
}
