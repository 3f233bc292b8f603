//! PNG, JPEG and `userdata.json` encoders. PNG and JPEG carry no georeference: they are
//! for previews, the GeoTIFF is the georeferenced product.

use super::OutputError;
use crate::raster::{Raster, SampleBuffer};

/// JPEG quality when the request gives none (what the Process API uses).
pub const DEFAULT_JPEG_QUALITY: u8 = 90;

fn invalid(msg: String) -> OutputError {
    OutputError::InvalidRaster(msg)
}

/// Checks the sample count and returns the interleaved samples of every pixel.
fn interleave<T: Copy>(planes: &[T], raster: &Raster) -> Result<Vec<T>, OutputError> {
    let pixels = raster.width * raster.height;
    if raster.width == 0 || raster.height == 0 || planes.len() != pixels * raster.bands {
        return Err(invalid(format!(
            "{}x{} pixels x {} bands does not match {} samples",
            raster.width,
            raster.height,
            raster.bands,
            planes.len()
        )));
    }
    let mut out = Vec::with_capacity(planes.len());
    for pixel in 0..pixels {
        for band in 0..raster.bands {
            out.push(planes[band * pixels + pixel]);
        }
    }
    Ok(out)
}

/// Encodes a UINT8 or UINT16 raster of 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA)
/// bands as PNG of the same bit depth.
pub fn encode_png(raster: &Raster) -> Result<Vec<u8>, OutputError> {
    let color = match raster.bands {
        1 => png::ColorType::Grayscale,
        2 => png::ColorType::GrayscaleAlpha,
        3 => png::ColorType::Rgb,
        4 => png::ColorType::Rgba,
        n => {
            return Err(invalid(format!(
                "PNG holds 1 to 4 bands (gray, gray+alpha, RGB, RGBA), the output has {n}"
            )))
        }
    };
    let (depth, bytes) = match &raster.data {
        SampleBuffer::U8(v) => (png::BitDepth::Eight, interleave(v, raster)?),
        SampleBuffer::U16(v) => (
            png::BitDepth::Sixteen,
            // PNG stores 16-bit samples big-endian.
            interleave(v, raster)?
                .iter()
                .flat_map(|s| s.to_be_bytes())
                .collect(),
        ),
        _ => {
            return Err(invalid(
                "PNG needs UINT8 or UINT16 samples; set sampleType in the evalscript".into(),
            ))
        }
    };
    let (width, height) = dims_u32(raster)?;
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(depth);
        let png_err = |e: png::EncodingError| OutputError::Encode(format!("PNG: {e}"));
        let mut writer = encoder.write_header().map_err(png_err)?;
        writer.write_image_data(&bytes).map_err(png_err)?;
        writer.finish().map_err(png_err)?;
    }
    Ok(out)
}

fn dims_u32(raster: &Raster) -> Result<(u32, u32), OutputError> {
    match (u32::try_from(raster.width), u32::try_from(raster.height)) {
        (Ok(w), Ok(h)) => Ok((w, h)),
        _ => Err(invalid(format!(
            "{}x{} pixels is too large for PNG",
            raster.width, raster.height
        ))),
    }
}

/// Encodes a UINT8 raster of 1 (gray) or 3 (RGB) bands as baseline JPEG; `quality` 1-100.
pub fn encode_jpeg(raster: &Raster, quality: u8) -> Result<Vec<u8>, OutputError> {
    let SampleBuffer::U8(planes) = &raster.data else {
        return Err(invalid(
            "JPEG needs UINT8 samples; set sampleType in the evalscript".into(),
        ));
    };
    let color = match raster.bands {
        1 => jpeg_encoder::ColorType::Luma,
        3 => jpeg_encoder::ColorType::Rgb,
        n => {
            return Err(invalid(format!(
                "JPEG holds 1 (gray) or 3 (RGB) bands, the output has {n}"
            )))
        }
    };
    let (Ok(width), Ok(height)) = (u16::try_from(raster.width), u16::try_from(raster.height))
    else {
        return Err(invalid(format!(
            "{}x{} pixels exceeds JPEG's limit of 65535 per side",
            raster.width, raster.height
        )));
    };
    let bytes = interleave(planes, raster)?;
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100))
        .encode(&bytes, width, height, color)
        .map_err(|e| OutputError::Encode(format!("JPEG: {e}")))?;
    Ok(out)
}

/// `userdata.json`: the evalscript's `outputMetadata.userData`, pretty-printed.
pub fn encode_userdata(user_data: &serde_json::Value) -> Result<Vec<u8>, OutputError> {
    let mut bytes = serde_json::to_vec_pretty(user_data)
        .map_err(|e| OutputError::Encode(format!("userdata JSON: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raster(width: usize, height: usize, bands: usize, data: SampleBuffer) -> Raster {
        Raster {
            width,
            height,
            bands,
            data,
        }
    }

    fn decode_png(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    #[test]
    fn png_8bit_every_band_count_round_trips() {
        let (w, h) = (7, 5);
        for bands in 1..=4 {
            let planes: Vec<u8> = (0..bands * w * h).map(|i| (i * 37 % 251) as u8).collect();
            let bytes = encode_png(&raster(w, h, bands, SampleBuffer::U8(planes.clone()))).unwrap();
            let (info, data) = decode_png(&bytes);
            assert_eq!((info.width, info.height), (7, 5));
            assert_eq!(info.bit_depth, png::BitDepth::Eight);
            assert_eq!(info.color_type.samples(), bands);
            // Pixel p, band b of the decoded (interleaved) data is plane b, index p.
            for p in 0..w * h {
                for b in 0..bands {
                    assert_eq!(data[p * bands + b], ((b * w * h + p) * 37 % 251) as u8);
                }
            }
        }
    }

    #[test]
    fn png_16bit_keeps_full_values() {
        let planes: Vec<u16> = (0..2 * 3 * 2).map(|i| 60_000 - i as u16 * 1000).collect();
        let bytes = encode_png(&raster(3, 2, 2, SampleBuffer::U16(planes))).unwrap();
        let (info, data) = decode_png(&bytes);
        assert_eq!(info.bit_depth, png::BitDepth::Sixteen);
        assert_eq!(info.color_type, png::ColorType::GrayscaleAlpha);
        let samples: Vec<u16> = data
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        // Pixel 0: band 0 = 60000, band 1 = 60000 - 6 * 1000.
        assert_eq!(&samples[..4], &[60_000, 54_000, 59_000, 53_000]);
    }

    #[test]
    fn png_refuses_what_it_cannot_hold() {
        let f = encode_png(&raster(1, 1, 1, SampleBuffer::F32(vec![0.5])));
        assert!(f.unwrap_err().to_string().contains("UINT8 or UINT16"));
        let five = encode_png(&raster(1, 1, 5, SampleBuffer::U8(vec![0; 5])));
        assert!(five.unwrap_err().to_string().contains("1 to 4 bands"));
        let short = encode_png(&raster(2, 2, 1, SampleBuffer::U8(vec![0; 3])));
        assert!(short.unwrap_err().to_string().contains("3 samples"));
    }

    #[test]
    fn jpeg_gray_and_rgb_decode_to_size_and_close_values() {
        let (w, h) = (40, 24);
        for bands in [1usize, 3] {
            // Smooth, so a quality-95 JPEG stays within a few levels.
            let planes: Vec<u8> = (0..bands)
                .flat_map(|b| (0..w * h).map(move |p| (b * 60 + (p % w) * 2 + (p / w)) as u8))
                .collect();
            let bytes =
                encode_jpeg(&raster(w, h, bands, SampleBuffer::U8(planes.clone())), 95).unwrap();
            let mut dec = jpeg_decoder::Decoder::new(bytes.as_slice());
            let pixels = dec.decode().unwrap();
            let info = dec.info().unwrap();
            assert_eq!((info.width as usize, info.height as usize), (w, h));
            assert_eq!(pixels.len(), w * h * bands);
            let mut worst = 0i32;
            for p in 0..w * h {
                for b in 0..bands {
                    let want = (b * 60 + (p % w) * 2 + (p / w)) as i32;
                    worst = worst.max((i32::from(pixels[p * bands + b]) - want).abs());
                }
            }
            assert!(worst <= 6, "{bands} bands: max error {worst}");
        }
    }

    #[test]
    fn jpeg_refuses_other_types_and_band_counts() {
        let u16s = encode_jpeg(&raster(1, 1, 1, SampleBuffer::U16(vec![1])), 90);
        assert!(u16s.unwrap_err().to_string().contains("UINT8"));
        let two = encode_jpeg(&raster(1, 1, 2, SampleBuffer::U8(vec![1, 2])), 90);
        assert!(two.unwrap_err().to_string().contains("1 (gray) or 3 (RGB)"));
        let wide = encode_jpeg(&raster(70_000, 1, 1, SampleBuffer::U8(vec![0; 70_000])), 90);
        assert!(wide.unwrap_err().to_string().contains("65535"));
    }

    #[test]
    fn userdata_is_the_json_value() {
        let value = json!({"dates": ["2023-06-01"], "n": 3, "nested": {"a": null}});
        let bytes = encode_userdata(&value).unwrap();
        let back: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, value);
        assert!(bytes.ends_with(b"}\n"));
    }
}
