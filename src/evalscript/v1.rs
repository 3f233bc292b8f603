//! Source scanning for V1 scripts: which band names a V1 body uses, and the top-level
//! declarations of a script (for global-state snapshots). A small tokenizer that skips
//! comments, strings and template literals; no full parse is needed for either.

/// The function a V1 body is wrapped in; its parameters are the body's bands.
pub(crate) const V1_FUNCTION: &str = "__tessera_v1_body";

/// A V1 body as the function the boa tier calls per pixel (and the compiled tier
/// lowers): one parameter per band global, the body unchanged (so line numbers hold).
pub(crate) fn wrap_body(source: &str, bands: &[String]) -> String {
    format!(
        "function {V1_FUNCTION}({}) {{{source}\n}}",
        bands.join(", ")
    )
}

/// Band names that are not of the `B<digits>`/`B8A` form, across the collections in
/// evalscript-v3.md §5.
const NAMED_BANDS: &[&str] = &[
    "dataMask",
    "SCL",
    "SNW",
    "CLD",
    "AOT",
    "WVP",
    "CLM",
    "CLP",
    "sunZenithAngles",
    "sunAzimuthAngles",
    "viewZenithMean",
    "viewAzimuthMean",
    "viewZenithAngles",
    "viewAzimuthAngles",
    "VV",
    "VH",
    "HH",
    "HV",
    "BQA",
    "QA_PIXEL",
    "QA_RADSAT",
    "DEM",
    "PAN",
    "NO2",
    "CO",
    "O3",
    "SO2",
    "CH4",
    "HCHO",
    "CLOUD_FRACTION",
    "AER_AI_340_380",
    "AER_AI_354_388",
    "F1",
    "F2",
    "S1",
    "S2",
    "S3",
    "S4",
    "S5",
    "S6",
    "S7",
    "S8",
    "S9",
];

fn is_band_name(word: &str) -> bool {
    if NAMED_BANDS.contains(&word) {
        return true;
    }
    let Some(rest) = word.strip_prefix('B') else {
        return false;
    };
    rest == "8A"
        || (!rest.is_empty() && rest.len() <= 2 && rest.bytes().all(|b| b.is_ascii_digit()))
}

/// One identifier of the source with what precedes it.
struct Word<'a> {
    text: &'a str,
    /// The previous non-space character, if any.
    before: Option<char>,
    /// The previous identifier (e.g. `var`), if it directly precedes.
    keyword: Option<&'a str>,
    /// Nesting depth of `{`/`(`/`[` at this word.
    depth: usize,
}

fn words(source: &str) -> Vec<Word<'_>> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut depth = 0usize;
    let mut before: Option<char> = None;
    let mut keyword: Option<&str> = None;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'"' | b'\'' | b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != c {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                before = Some(c as char);
                keyword = None;
            }
            _ if c.is_ascii_alphabetic() || c == b'_' || c == b'$' => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'$')
                {
                    i += 1;
                }
                let text = &source[start..i];
                out.push(Word {
                    text,
                    before,
                    keyword,
                    depth,
                });
                keyword = Some(text);
                before = Some('a');
            }
            _ if c.is_ascii_digit() => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                    i += 1;
                }
                before = Some('0');
                keyword = None;
            }
            _ => {
                if !c.is_ascii_whitespace() {
                    match c {
                        b'{' | b'(' | b'[' => depth += 1,
                        b'}' | b')' | b']' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                    before = Some(c as char);
                    keyword = None;
                }
                i += 1;
            }
        }
    }
    out
}

/// The band names a V1 body reads as bare globals, in order of first use: known band
/// identifiers (or names in `extra`, the bands of the request's collection) that are not
/// property names (`x.B04`, `{B04: ...}` keys) and that the script does not declare.
pub(crate) fn v1_band_names(source: &str, extra: &[&str]) -> Vec<String> {
    let all = words(source);
    let declared: Vec<&str> = all
        .iter()
        .filter(|w| matches!(w.keyword, Some("var" | "let" | "const" | "function")))
        .map(|w| w.text)
        .collect();
    let mut bands: Vec<String> = Vec::new();
    for word in &all {
        let band = is_band_name(word.text) || extra.contains(&word.text);
        if word.before == Some('.') || !band || declared.contains(&word.text) {
            continue;
        }
        if !bands.iter().any(|b| b == word.text) {
            bands.push(word.text.to_string());
        }
    }
    bands
}

/// Names declared at the top level with `var`/`let`/`const`/`class`/`function` (depth 0).
pub(crate) fn top_level_declarations(source: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for word in words(source) {
        if word.depth == 0
            && matches!(word.keyword, Some("var" | "let" | "const" | "class"))
            && !names.iter().any(|n| n == word.text)
        {
            names.push(word.text.to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_bare_band_globals() {
        let src = "// uses B99 in a comment\nlet ndvi = (B08 - B04) / (B08 + B04);\n\
                   var s = 'B02'; let o = {B03: 1}; o.B05;\nreturn [ndvi, dataMask, B8A];";
        assert_eq!(
            v1_band_names(src, &[]),
            vec!["B08", "B04", "B03", "dataMask", "B8A"]
        );
    }

    #[test]
    fn skips_declared_names() {
        assert_eq!(
            v1_band_names("var VV = 1; return [VV + B11];", &[]),
            vec!["B11"]
        );
        assert_eq!(
            v1_band_names(
                "return [CLOUD_BASE_HEIGHT / 1000, B01];",
                &["CLOUD_BASE_HEIGHT"]
            ),
            vec!["CLOUD_BASE_HEIGHT", "B01"]
        );
        assert!(!is_band_name("B123"));
        assert!(!is_band_name("Blue"));
        assert!(is_band_name("B1"));
    }

    #[test]
    fn top_level_declarations_ignore_nested() {
        let src =
            "var a = 1;\nlet b = {c: 2};\nfunction f() { var d = 3; }\nconst e = [1];\nclass K {}";
        assert_eq!(top_level_declarations(src), vec!["a", "b", "e", "K"]);
    }
}
