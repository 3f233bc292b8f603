//! Zarr v2 stores for Batch v2 `{"type": "zarr"}` outputs, pure: the group and array
//! metadata, the layout that maps each tile to exactly one chunk, and chunk encoding.
//!
//! One group per request; one array per output, shaped `[1, y, x]` (`_ARRAY_DIMENSIONS`
//! `time, y, x`, as xarray reads them) with chunks of one tile, so tiles processed in
//! parallel each write their own chunk object and never touch another's. 1-D `x` and `y`
//! arrays hold the pixel-centre coordinates in the tiles' CRS. Chunks are zlib-compressed
//! (numcodecs `zlib`), little endian, C order.

use std::io::Write;

use serde_json::{json, Map, Value};

use super::OutputError;
use crate::evalscript::SampleType;
use crate::raster::SampleBuffer;

fn invalid(msg: impl Into<String>) -> OutputError {
    OutputError::InvalidOption(msg.into())
}

/// Where every tile's chunk sits: the tiles of one CRS on one lattice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZarrLayout {
    pub epsg: u32,
    /// Upper-left corner of the array.
    pub origin_x: f64,
    pub origin_y: f64,
    pub resolution: f64,
    /// Chunk (tile) size in pixels.
    pub tile_width: usize,
    pub tile_height: usize,
    pub cols: usize,
    pub rows: usize,
}

impl ZarrLayout {
    /// The layout of tiles `(epsg, [x_min, y_min, x_max, y_max])` at `resolution`: they
    /// must share one CRS and one size, and sit on one lattice.
    pub fn from_tiles(
        tiles: impl IntoIterator<Item = (u32, [f64; 4])>,
        resolution: f64,
    ) -> Result<Self, OutputError> {
        let tiles: Vec<(u32, [f64; 4])> = tiles.into_iter().collect();
        let Some(&(epsg, first)) = tiles.first() else {
            return Err(invalid("a Zarr output needs at least one tile"));
        };
        let (w, h) = (first[2] - first[0], first[3] - first[1]);
        let mut ul = (f64::INFINITY, f64::NEG_INFINITY);
        let mut lr = (f64::NEG_INFINITY, f64::INFINITY);
        for (e, b) in &tiles {
            if *e != epsg {
                return Err(invalid(format!(
                    "a Zarr output holds one CRS, but the area spans EPSG:{epsg} and EPSG:{e}; \
                     split the request by UTM zone"
                )));
            }
            if ((b[2] - b[0]) - w).abs() > 1e-6 || ((b[3] - b[1]) - h).abs() > 1e-6 {
                return Err(invalid("a Zarr output needs tiles of one size"));
            }
            ul = (ul.0.min(b[0]), ul.1.max(b[3]));
            lr = (lr.0.max(b[2]), lr.1.min(b[1]));
        }
        let layout = ZarrLayout {
            epsg,
            origin_x: ul.0,
            origin_y: ul.1,
            resolution,
            tile_width: (w / resolution).round() as usize,
            tile_height: (h / resolution).round() as usize,
            cols: ((lr.0 - ul.0) / w).round() as usize,
            rows: ((ul.1 - lr.1) / h).round() as usize,
        };
        for (_, b) in &tiles {
            layout.chunk_of(b[0], b[3])?;
        }
        Ok(layout)
    }

    /// The `(row, col)` chunk of the tile whose upper-left corner is `(x_min, y_max)`.
    pub fn chunk_of(&self, x_min: f64, y_max: f64) -> Result<(usize, usize), OutputError> {
        let tw = self.tile_width as f64 * self.resolution;
        let th = self.tile_height as f64 * self.resolution;
        let col = (x_min - self.origin_x) / tw;
        let row = (self.origin_y - y_max) / th;
        let on_lattice = |v: f64, n: usize| {
            (v - v.round()).abs() < 1e-6 && v >= -1e-6 && (v.round() as usize) < n
        };
        if !on_lattice(col, self.cols) || !on_lattice(row, self.rows) {
            return Err(invalid(format!(
                "tile at ({x_min}, {y_max}) is not on the Zarr chunk lattice"
            )));
        }
        Ok((row.round() as usize, col.round() as usize))
    }

    pub fn width(&self) -> usize {
        self.cols * self.tile_width
    }

    pub fn height(&self) -> usize {
        self.rows * self.tile_height
    }
}

/// The Zarr `dtype` of an evalscript sample type.
pub fn dtype_of(sample_type: SampleType) -> &'static str {
    match sample_type {
        SampleType::Auto | SampleType::Uint8 => "|u1",
        SampleType::Uint16 => "<u2",
        SampleType::Int8 => "|i1",
        SampleType::Int16 => "<i2",
        SampleType::Float32 => "<f4",
    }
}

/// A numpy dtype string in the form [`dtype_of`] gives: one-byte types with `|`, others
/// little endian unless `>` says otherwise (`=` is native, little endian here).
fn normalise_dtype(d: &str) -> String {
    let (order, rest) = match d.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (Some(c), &d[1..]),
        _ => (None, d),
    };
    if rest.ends_with('1') {
        format!("|{rest}")
    } else if order == Some('>') {
        format!(">{rest}")
    } else {
        format!("<{rest}")
    }
}

/// One output array: its id, dtype and fill value.
#[derive(Debug, Clone, PartialEq)]
pub struct ZarrArray {
    pub id: String,
    pub dtype: &'static str,
    pub fill_value: Value,
}

/// The array's parameters from `arrayParameters` and `arrayOverrides[id]` (overrides win):
/// `dtype` must be the one the evalscript's sample type produces (no conversion happens),
/// `order` must be `C`, `fill_value` a number, `"NaN"` or null.
pub fn array_spec(
    id: &str,
    sample_type: SampleType,
    nodata: Option<f64>,
    params: Option<&Map<String, Value>>,
    overrides: Option<&Map<String, Value>>,
) -> Result<ZarrArray, OutputError> {
    let get = |key: &str| {
        overrides
            .and_then(|o| o.get(key))
            .or_else(|| params.and_then(|p| p.get(key)))
            .filter(|v| !v.is_null())
    };
    let dtype = dtype_of(sample_type);
    if let Some(want) = get("dtype") {
        let want = want.as_str().unwrap_or_default();
        if normalise_dtype(want) != dtype {
            return Err(invalid(format!(
                "Zarr array '{id}': dtype {want:?} does not match the evalscript output's sample type \
                 ({dtype}); set sampleType in setup() instead"
            )));
        }
    }
    if let Some(order) = get("order") {
        if order != "C" {
            return Err(invalid(format!(
                "Zarr array '{id}': only order \"C\" is written"
            )));
        }
    }
    let fill_value = match get("fill_value") {
        None => nodata.map_or(json!(0), |v| json!(v)),
        Some(Value::String(s)) if s == "NaN" => json!("NaN"),
        Some(Value::Number(n)) => Value::Number(n.clone()),
        Some(other) => {
            return Err(invalid(format!(
                "Zarr array '{id}': fill_value must be a number or \"NaN\", got {other}"
            )))
        }
    };
    Ok(ZarrArray {
        id: id.to_string(),
        dtype,
        fill_value,
    })
}

/// The metadata objects of the store, as `(relative key, bytes)`: `.zgroup`, `.zattrs`,
/// each array's `.zarray`/`.zattrs`, and the `x`/`y` coordinate arrays with their data.
pub fn store_metadata(
    layout: &ZarrLayout,
    arrays: &[ZarrArray],
    custom_attributes: Option<&Map<String, Value>>,
) -> Vec<(String, Vec<u8>)> {
    let bytes = |v: Value| serde_json::to_vec_pretty(&v).unwrap_or_default();
    let mut attrs = custom_attributes.cloned().unwrap_or_default();
    attrs.insert("crs".into(), json!(format!("EPSG:{}", layout.epsg)));
    let mut files = vec![
        (".zgroup".to_string(), bytes(json!({"zarr_format": 2}))),
        (".zattrs".to_string(), bytes(Value::Object(attrs))),
    ];
    for a in arrays {
        files.push((
            format!("{}/.zarray", a.id),
            bytes(json!({
                "zarr_format": 2,
                "shape": [1, layout.height(), layout.width()],
                "chunks": [1, layout.tile_height, layout.tile_width],
                "dtype": a.dtype,
                "compressor": {"id": "zlib", "level": 6},
                "fill_value": a.fill_value,
                "order": "C",
                "filters": null,
                "dimension_separator": "."
            })),
        ));
        files.push((
            format!("{}/.zattrs", a.id),
            bytes(
                json!({"_ARRAY_DIMENSIONS": ["time", "y", "x"], "grid_mapping_epsg": layout.epsg}),
            ),
        ));
    }
    let r = layout.resolution;
    let xs: Vec<f64> = (0..layout.width())
        .map(|i| layout.origin_x + (i as f64 + 0.5) * r)
        .collect();
    let ys: Vec<f64> = (0..layout.height())
        .map(|j| layout.origin_y - (j as f64 + 0.5) * r)
        .collect();
    for (name, values) in [("x", xs), ("y", ys)] {
        files.push((
            format!("{name}/.zarray"),
            bytes(json!({
                "zarr_format": 2, "shape": [values.len()], "chunks": [values.len()], "dtype": "<f8",
                "compressor": null, "fill_value": null, "order": "C", "filters": null,
                "dimension_separator": "."
            })),
        ));
        files.push((
            format!("{name}/.zattrs"),
            bytes(json!({"_ARRAY_DIMENSIONS": [name], "units": if layout.epsg == 4326 { "degrees" } else { "m" }})),
        ));
        files.push((
            format!("{name}/0"),
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ));
    }
    files
}

/// The key of a tile's chunk in array `id`.
pub fn chunk_key(id: &str, row: usize, col: usize) -> String {
    format!("{id}/0.{row}.{col}")
}

/// A chunk's bytes: the first band of `data` (one band per Zarr output), little endian,
/// zlib-compressed.
pub fn encode_chunk(data: &SampleBuffer, pixels: usize) -> Result<Vec<u8>, OutputError> {
    if data.len() < pixels {
        return Err(OutputError::InvalidRaster(format!(
            "a Zarr chunk needs {pixels} samples, the output has {}",
            data.len()
        )));
    }
    let raw: Vec<u8> = match data {
        SampleBuffer::U8(v) => v[..pixels].to_vec(),
        SampleBuffer::I8(v) => v[..pixels].iter().map(|x| *x as u8).collect(),
        SampleBuffer::U16(v) => v[..pixels].iter().flat_map(|x| x.to_le_bytes()).collect(),
        SampleBuffer::I16(v) => v[..pixels].iter().flat_map(|x| x.to_le_bytes()).collect(),
        SampleBuffer::F32(v) => v[..pixels].iter().flat_map(|x| x.to_le_bytes()).collect(),
    };
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(&raw)
        .and_then(|_| enc.finish())
        .map_err(|e| OutputError::Encode(format!("zlib: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(x: f64, y: f64) -> (u32, [f64; 4]) {
        (32633, [x, y, x + 10_000.0, y + 10_000.0])
    }

    #[test]
    fn layout_puts_each_tile_in_its_own_chunk() {
        let tiles = [
            tile(510_000.0, 5_080_000.0),
            tile(520_000.0, 5_080_000.0),
            tile(510_000.0, 5_070_000.0),
            tile(520_000.0, 5_070_000.0),
        ];
        let l = ZarrLayout::from_tiles(tiles, 20.0).unwrap();
        assert_eq!(
            (l.cols, l.rows, l.tile_width, l.tile_height),
            (2, 2, 500, 500)
        );
        assert_eq!((l.origin_x, l.origin_y), (510_000.0, 5_090_000.0));
        assert_eq!((l.width(), l.height()), (1000, 1000));
        let mut seen = std::collections::HashSet::new();
        for (_, b) in tiles {
            assert!(seen.insert(l.chunk_of(b[0], b[3]).unwrap()));
        }
        assert_eq!(l.chunk_of(520_000.0, 5_080_000.0).unwrap(), (1, 1));
        assert!(l.chunk_of(515_000.0, 5_080_000.0).is_err());
        assert!(l.chunk_of(530_000.0, 5_080_000.0).is_err());
    }

    #[test]
    fn layout_refuses_mixed_crs_and_sizes() {
        let e = ZarrLayout::from_tiles(
            [tile(0.0, 0.0), (32634, [0.0, 0.0, 10_000.0, 10_000.0])],
            20.0,
        )
        .unwrap_err();
        assert!(e.to_string().contains("one CRS"), "{e}");
        let e = ZarrLayout::from_tiles(
            [tile(0.0, 0.0), (32633, [0.0, 0.0, 5_000.0, 10_000.0])],
            20.0,
        )
        .unwrap_err();
        assert!(e.to_string().contains("one size"), "{e}");
        assert!(ZarrLayout::from_tiles([], 20.0).is_err());
    }

    #[test]
    fn array_parameters_follow_the_sample_type() {
        let a = array_spec("ndvi", SampleType::Float32, None, None, None).unwrap();
        assert_eq!((a.dtype, a.fill_value.clone()), ("<f4", json!(0)));
        let params =
            json!({"dtype": "<u2", "order": "C", "chunks": [1, 1000, 1000], "fill_value": 0});
        let overrides = json!({"dtype": "<f4", "fill_value": "NaN"});
        let a = array_spec(
            "ndvi",
            SampleType::Float32,
            None,
            params.as_object(),
            overrides.as_object(),
        )
        .unwrap();
        assert_eq!(a.fill_value, json!("NaN"));
        let e = array_spec("b", SampleType::Float32, None, params.as_object(), None).unwrap_err();
        assert!(e.to_string().contains("sample type"), "{e}");
        assert_eq!(
            array_spec(
                "b",
                SampleType::Uint8,
                None,
                json!({"dtype": "u1"}).as_object(),
                None
            )
            .unwrap()
            .dtype,
            "|u1"
        );
        assert_eq!(
            array_spec("b", SampleType::Uint16, Some(7.0), None, None)
                .unwrap()
                .fill_value,
            json!(7.0)
        );
        assert!(array_spec(
            "b",
            SampleType::Uint8,
            None,
            json!({"order": "F"}).as_object(),
            None
        )
        .is_err());
        assert_eq!(normalise_dtype("=f4"), "<f4");
        assert_eq!(normalise_dtype("u2"), "<u2");
        assert_eq!(normalise_dtype(">f4"), ">f4");
        let big = json!({"dtype": ">f4"});
        assert!(array_spec("b", SampleType::Float32, None, big.as_object(), None).is_err());
        assert!(array_spec(
            "b",
            SampleType::Uint8,
            None,
            json!({"fill_value": [1]}).as_object(),
            None
        )
        .is_err());
    }

    #[test]
    fn metadata_and_chunks() {
        let l = ZarrLayout::from_tiles([tile(510_000.0, 5_080_000.0)], 20.0).unwrap();
        let arrays = [ZarrArray {
            id: "ndvi".into(),
            dtype: "<f4",
            fill_value: json!("NaN"),
        }];
        let files = store_metadata(&l, &arrays, json!({"project": "x"}).as_object());
        let get = |k: &str| {
            files
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, b)| b.clone())
                .unwrap()
        };
        let zarray: Value = serde_json::from_slice(&get("ndvi/.zarray")).unwrap();
        assert_eq!(zarray["shape"], json!([1, 500, 500]));
        assert_eq!(zarray["chunks"], json!([1, 500, 500]));
        let attrs: Value = serde_json::from_slice(&get(".zattrs")).unwrap();
        assert_eq!(attrs, json!({"project": "x", "crs": "EPSG:32633"}));
        let xs = get("x/0");
        assert_eq!(xs.len(), 500 * 8);
        assert_eq!(f64::from_le_bytes(xs[..8].try_into().unwrap()), 510_010.0);
        let ys = get("y/0");
        assert_eq!(f64::from_le_bytes(ys[..8].try_into().unwrap()), 5_089_990.0);
        assert_eq!(chunk_key("ndvi", 1, 2), "ndvi/0.1.2");
        let chunk = encode_chunk(&SampleBuffer::F32(vec![1.5; 4]), 4).unwrap();
        let mut dec = flate2::read::ZlibDecoder::new(&chunk[..]);
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut dec, &mut raw).unwrap();
        assert_eq!(raw, [1.5f32.to_le_bytes(); 4].concat());
        assert!(encode_chunk(&SampleBuffer::U8(vec![1; 3]), 4).is_err());
    }
}
