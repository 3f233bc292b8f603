//! The configuration an evalscript's `setup()` returns, and its parsing from the JS value.
//!
//! Parsing is lenient where real scripts vary (evalscript-v3.md §2: `sampleType` and
//! `mosaicking` in any case or via the `SampleType`/`Mosaicking` globals, `input` as
//! strings or objects, `output` as one object or an array) and strict where a mistake
//! would silently produce wrong rasters (band counts, unknown sample types, duplicate ids).

use boa_engine::{Context, JsObject, JsValue};

use super::error::EvalscriptError;
use super::runtime::describe_js_error;
use super::sample_type::SampleType;

/// More bands than this in one output is surely a mistake, and would allocate unboundedly.
pub const MAX_OUTPUT_BANDS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mosaicking {
    Simple,
    Orbit,
    Tile,
}

impl Mosaicking {
    pub const ALL: [(Mosaicking, &'static str); 3] = [
        (Mosaicking::Simple, "SIMPLE"),
        (Mosaicking::Orbit, "ORBIT"),
        (Mosaicking::Tile, "TILE"),
    ];

    /// Parses a `mosaicking` string in any case.
    pub fn parse(name: &str) -> Option<Mosaicking> {
        let upper = name.trim().to_ascii_uppercase();
        Self::ALL.iter().find(|(_, n)| *n == upper).map(|(m, _)| *m)
    }

    pub fn name(self) -> &'static str {
        match self {
            Mosaicking::Simple => "SIMPLE",
            Mosaicking::Orbit => "ORBIT",
            Mosaicking::Tile => "TILE",
        }
    }
}

/// One entry of `setup().output`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSpec {
    /// `"default"` when the script gives none.
    pub id: String,
    pub bands: usize,
    pub sample_type: SampleType,
    /// `nodataValue`: only a tag for encoders, never applied to pixel values.
    pub nodata: Option<f64>,
}

/// The parsed result of `setup()`.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// Requested bands, in order of first mention, without duplicates.
    pub input_bands: Vec<String>,
    /// The unit shared by all input bands (upper-cased), if the script asked for one.
    pub units: Option<String>,
    /// The unit of each entry of `input_bands` (upper-cased), `None` where unspecified.
    pub band_units: Vec<Option<String>>,
    pub outputs: Vec<OutputSpec>,
    pub mosaicking: Mosaicking,
    /// Data fusion: the inputs of each datasource, in order of first mention; empty when
    /// no input names a `datasource`. With fusion, `input_bands`/`band_units` are every
    /// datasource's bands concatenated in this order (a band read from two datasources
    /// appears twice), which is also what the PU band factor counts.
    pub datasources: Vec<DatasourceInput>,
}

/// One datasource of a data-fusion script: `setup().input[]` entries with the same
/// `datasource` id are merged.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasourceInput {
    /// The id the request gives its `input.data[]` entry (`"l2a"`, `"S1GRD"`...).
    pub id: String,
    /// Bands, in order of first mention, without duplicates.
    pub bands: Vec<String>,
    /// Unit of each band (upper-cased), `None` where unspecified.
    pub band_units: Vec<Option<String>>,
}

impl Setup {
    /// True for a data-fusion script (`evaluatePixel` gets samples keyed by datasource).
    pub fn is_fusion(&self) -> bool {
        !self.datasources.is_empty()
    }
}

fn invalid(message: impl Into<String>) -> EvalscriptError {
    EvalscriptError::InvalidSetup(message.into())
}

/// Reads `object[key]`; a throwing getter is reported as setup() throwing.
fn get(object: &JsObject, key: &str, ctx: &mut Context) -> Result<JsValue, EvalscriptError> {
    object
        .get(boa_engine::JsString::from(key), ctx)
        .map_err(|err| EvalscriptError::SetupThrew(describe_js_error(&err, ctx)))
}

/// The elements of a JS array, or `None` if `value` is not an array.
fn array_elements(
    value: &JsValue,
    ctx: &mut Context,
) -> Result<Option<Vec<JsValue>>, EvalscriptError> {
    let Some(object) = value.as_object() else {
        return Ok(None);
    };
    if !object.is_array() {
        return Ok(None);
    }
    let length = get(&object, "length", ctx)?
        .as_number()
        .unwrap_or(0.0)
        .max(0.0) as u64;
    let mut elements = Vec::with_capacity(length.min(4096) as usize);
    for index in 0..length {
        let element = object
            .get(index, ctx)
            .map_err(|err| EvalscriptError::SetupThrew(describe_js_error(&err, ctx)))?;
        elements.push(element);
    }
    Ok(Some(elements))
}

fn as_string(value: &JsValue) -> Option<String> {
    value.as_string().map(|s| s.to_std_string_escaped())
}

/// A short description of a JS value's kind for error messages.
fn kind_of(value: &JsValue) -> &'static str {
    if value.is_undefined() {
        "undefined"
    } else if value.is_null() {
        "null"
    } else if value.is_number() {
        "a number"
    } else if value.is_string() {
        "a string"
    } else if value.is_boolean() {
        "a boolean"
    } else if value.as_object().is_some_and(|o| o.is_array()) {
        "an array"
    } else if value.as_object().is_some_and(|o| o.is_callable()) {
        "a function"
    } else if value.is_object() {
        "an object"
    } else {
        "an unsupported value"
    }
}

/// Parses the value `setup()` returned.
pub(crate) fn parse_setup(value: &JsValue, ctx: &mut Context) -> Result<Setup, EvalscriptError> {
    let Some(config) = value.as_object() else {
        return Err(invalid(format!(
            "setup() must return an object with 'input' and 'output', but returned {}",
            kind_of(value)
        )));
    };
    let (mut input_bands, mut band_units, datasources) =
        parse_input(&get(&config, "input", ctx)?, ctx)?;
    let outputs = parse_outputs(&get(&config, "output", ctx)?, ctx)?;
    let mosaicking = parse_mosaicking(&get(&config, "mosaicking", ctx)?)?;
    if !datasources.is_empty() {
        input_bands = datasources.iter().flat_map(|d| d.bands.clone()).collect();
        band_units = datasources
            .iter()
            .flat_map(|d| d.band_units.clone())
            .collect();
    }
    let units = common_unit(&band_units);
    Ok(Setup {
        input_bands,
        units,
        band_units,
        outputs,
        mosaicking,
        datasources,
    })
}

fn common_unit(band_units: &[Option<String>]) -> Option<String> {
    let first = band_units.first()?.clone()?;
    band_units
        .iter()
        .all(|u| u.as_deref() == Some(first.as_str()))
        .then_some(first)
}

/// Bands and units of the plain inputs, and the datasources of a fusion script.
type ParsedInput = (Vec<String>, Vec<Option<String>>, Vec<DatasourceInput>);

fn parse_input(input: &JsValue, ctx: &mut Context) -> Result<ParsedInput, EvalscriptError> {
    const EXPECTED: &str = "setup().input must be an array of band names or of objects \
                            {bands: [...], units?}";
    let entries = match array_elements(input, ctx)? {
        Some(entries) => entries,
        // A single input object without the surrounding array: accepted leniently.
        None if input.is_object() => vec![input.clone()],
        None => return Err(invalid(format!("{EXPECTED}, but it is {}", kind_of(input)))),
    };
    let mut bands: Vec<String> = Vec::new();
    let mut units: Vec<Option<String>> = Vec::new();
    let mut datasources: Vec<DatasourceInput> = Vec::new();
    let mut plain = 0usize;
    let mut add = |source: Option<String>, band: String, unit: Option<String>| {
        let (bands, units) = match source {
            None => (&mut bands, &mut units),
            Some(id) => {
                let at = match datasources.iter().position(|d| d.id == id) {
                    Some(at) => at,
                    None => {
                        datasources.push(DatasourceInput {
                            id,
                            bands: Vec::new(),
                            band_units: Vec::new(),
                        });
                        datasources.len() - 1
                    }
                };
                let d = &mut datasources[at];
                (&mut d.bands, &mut d.band_units)
            }
        };
        if !bands.contains(&band) {
            bands.push(band);
            units.push(unit);
        }
    };
    for (index, entry) in entries.iter().enumerate() {
        if let Some(band) = as_string(entry) {
            plain += 1;
            add(None, band, None);
            continue;
        }
        let Some(object) = entry.as_object() else {
            return Err(invalid(format!(
                "{EXPECTED}, but input[{index}] is {}",
                kind_of(entry)
            )));
        };
        let source_value = get(&object, "datasource", ctx)?;
        let source = if source_value.is_undefined() || source_value.is_null() {
            plain += 1;
            None
        } else {
            match as_string(&source_value) {
                Some(id) if !id.is_empty() => Some(id),
                _ => {
                    return Err(invalid(format!(
                        "input[{index}].datasource must be the non-empty id of an entry of \
                         the request's input.data, but it is {}",
                        kind_of(&source_value)
                    )))
                }
            }
        };
        let bands_value = get(&object, "bands", ctx)?;
        let Some(names) = array_elements(&bands_value, ctx)? else {
            return Err(invalid(format!(
                "input[{index}].bands must be an array of band names, but it is {}",
                kind_of(&bands_value)
            )));
        };
        let names = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                as_string(name).ok_or_else(|| {
                    invalid(format!(
                        "input[{index}].bands[{i}] must be a band name string, but it is {}",
                        kind_of(name)
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let entry_units = parse_units(&get(&object, "units", ctx)?, names.len(), index, ctx)?;
        for (name, unit) in names.into_iter().zip(entry_units) {
            add(source.clone(), name, unit);
        }
    }
    if !datasources.is_empty() && plain > 0 {
        return Err(invalid(
            "with data fusion every setup().input entry must name its datasource: \
             {datasource: \"<id>\", bands: [...]}",
        ));
    }
    Ok((bands, units, datasources))
}

/// `units`: absent, one string for every band, or one string per band.
fn parse_units(
    units: &JsValue,
    band_count: usize,
    index: usize,
    ctx: &mut Context,
) -> Result<Vec<Option<String>>, EvalscriptError> {
    if units.is_undefined() || units.is_null() {
        return Ok(vec![None; band_count]);
    }
    if let Some(unit) = as_string(units) {
        return Ok(vec![Some(unit.to_ascii_uppercase()); band_count]);
    }
    let Some(list) = array_elements(units, ctx)? else {
        return Err(invalid(format!(
            "input[{index}].units must be a string or an array of strings, but it is {}",
            kind_of(units)
        )));
    };
    if list.len() != band_count {
        return Err(invalid(format!(
            "input[{index}].units has {} entries but bands has {band_count}; give one unit \
             per band or a single string",
            list.len()
        )));
    }
    list.iter()
        .map(|unit| {
            as_string(unit)
                .map(|u| Some(u.to_ascii_uppercase()))
                .ok_or_else(|| invalid(format!("input[{index}].units must contain strings")))
        })
        .collect()
}

fn parse_outputs(output: &JsValue, ctx: &mut Context) -> Result<Vec<OutputSpec>, EvalscriptError> {
    let entries = match array_elements(output, ctx)? {
        Some(entries) => entries,
        None if output.is_object() => vec![output.clone()],
        None => {
            return Err(invalid(format!(
                "setup() must return an 'output' object {{bands, sampleType?, id?}} or an \
                 array of them, but output is {}",
                kind_of(output)
            )))
        }
    };
    if entries.is_empty() {
        return Err(invalid("setup().output must declare at least one output"));
    }
    let mut outputs: Vec<OutputSpec> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let spec = parse_output(entry, index, ctx)?;
        if outputs.iter().any(|o| o.id == spec.id) {
            return Err(invalid(format!(
                "output id '{}' is used more than once; each output needs a unique id",
                spec.id
            )));
        }
        outputs.push(spec);
    }
    Ok(outputs)
}

fn parse_output(
    entry: &JsValue,
    index: usize,
    ctx: &mut Context,
) -> Result<OutputSpec, EvalscriptError> {
    let Some(object) = entry.as_object() else {
        return Err(invalid(format!(
            "output[{index}] must be an object {{bands, sampleType?, id?}}, but it is {}",
            kind_of(entry)
        )));
    };
    let id_value = get(&object, "id", ctx)?;
    let id = if id_value.is_undefined() || id_value.is_null() {
        "default".to_string()
    } else {
        match as_string(&id_value) {
            Some(id) if !id.is_empty() => id,
            _ => {
                return Err(invalid(format!(
                    "output[{index}].id must be a non-empty string"
                )))
            }
        }
    };

    let bands_value = get(&object, "bands", ctx)?;
    let bands = match bands_value.as_number() {
        Some(n) if n.fract() == 0.0 && n >= 1.0 && n <= MAX_OUTPUT_BANDS as f64 => n as usize,
        Some(n) => {
            return Err(invalid(format!(
                "output '{id}' has bands: {n}; it must be a whole number from 1 to \
                 {MAX_OUTPUT_BANDS}"
            )))
        }
        None => {
            return Err(invalid(format!(
                "output '{id}' must give 'bands' as a number, but it is {}",
                kind_of(&bands_value)
            )))
        }
    };

    let type_value = get(&object, "sampleType", ctx)?;
    let sample_type = if type_value.is_undefined() || type_value.is_null() {
        SampleType::Auto
    } else {
        let name = as_string(&type_value).ok_or_else(|| {
            invalid(format!(
                "output '{id}' has a sampleType that is {}; use a string or SampleType.X",
                kind_of(&type_value)
            ))
        })?;
        SampleType::parse(&name).ok_or_else(|| {
            let known: Vec<&str> = SampleType::ALL.iter().map(|(_, n)| *n).collect();
            invalid(format!(
                "output '{id}' has unknown sampleType '{name}'; expected one of {}",
                known.join(", ")
            ))
        })?
    };

    let nodata_value = get(&object, "nodataValue", ctx)?;
    let nodata = if nodata_value.is_undefined() || nodata_value.is_null() {
        None
    } else {
        Some(nodata_value.as_number().ok_or_else(|| {
            invalid(format!(
                "output '{id}' has a nodataValue that is {}; it must be a number",
                kind_of(&nodata_value)
            ))
        })?)
    };

    Ok(OutputSpec {
        id,
        bands,
        sample_type,
        nodata,
    })
}

fn parse_mosaicking(value: &JsValue) -> Result<Mosaicking, EvalscriptError> {
    if value.is_undefined() || value.is_null() {
        return Ok(Mosaicking::Simple);
    }
    let name = as_string(value).ok_or_else(|| {
        invalid(format!(
            "setup().mosaicking must be a string or Mosaicking.X, but it is {}",
            kind_of(value)
        ))
    })?;
    Mosaicking::parse(&name).ok_or_else(|| {
        invalid(format!(
            "unknown mosaicking '{name}'; expected SIMPLE, ORBIT or TILE"
        ))
    })
}
