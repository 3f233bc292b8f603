//! Round trips through the tiff crate's decoder; values come from closed-form formulas.

use std::io::{Cursor, Read};

use tiff::decoder::{Decoder, DecodingResult};
use tiff::tags::Tag;
use tiff::ColorType;

use super::{encode, encode_geotiff, nodata_text};
use crate::output::OutputError;
use crate::raster::{Georef, Raster, SampleBuffer};

fn utm33() -> Georef {
    Georef {
        epsg: 32633,
        x_min: 500_000.0,
        y_max: 5_000_000.0,
        res_x: 10.0,
        res_y: 20.0,
    }
}

fn u16_value(band: usize, x: usize, y: usize) -> u16 {
    (band * 40_000 + y * 101 + x * 7) as u16
}

/// 300x270 crosses tile borders in both directions (2x2 tiles, partial right/bottom).
fn u16_raster(width: usize, height: usize, bands: usize) -> Raster {
    let mut data = Vec::with_capacity(width * height * bands);
    for band in 0..bands {
        for y in 0..height {
            for x in 0..width {
                data.push(u16_value(band, x, y));
            }
        }
    }
    Raster {
        width,
        height,
        bands,
        data: SampleBuffer::U16(data),
    }
}

/// The decoded samples in our own (comparable) buffer type.
fn samples(result: DecodingResult) -> SampleBuffer {
    match result {
        DecodingResult::U8(v) => SampleBuffer::U8(v),
        DecodingResult::I8(v) => SampleBuffer::I8(v),
        DecodingResult::U16(v) => SampleBuffer::U16(v),
        DecodingResult::I16(v) => SampleBuffer::I16(v),
        DecodingResult::F32(v) => SampleBuffer::F32(v),
        _ => panic!("unexpected sample type"),
    }
}

fn decoder(bytes: &[u8]) -> Decoder<Cursor<&[u8]>> {
    Decoder::new(Cursor::new(bytes)).unwrap()
}

#[test]
fn two_band_u16_round_trips_with_all_tags() {
    let (w, h) = (300, 270);
    let bytes = encode_geotiff(&u16_raster(w, h, 2), &utm33(), None).unwrap();
    assert_eq!(
        &bytes[..4],
        &[0x49, 0x49, 42, 0],
        "little-endian classic TIFF"
    );
    let mut dec = decoder(&bytes);
    assert_eq!(dec.dimensions().unwrap(), (300, 270));
    assert_eq!(
        dec.colortype().unwrap(),
        ColorType::Multiband {
            bit_depth: 16,
            num_samples: 2
        }
    );
    let DecodingResult::U16(pixels) = dec.read_image().unwrap() else {
        panic!("expected u16 samples");
    };
    assert_eq!(pixels.len(), w * h * 2);
    for (y, x) in [
        (0, 0),
        (0, 299),
        (255, 255),
        (256, 256),
        (269, 299),
        (100, 17),
    ] {
        for band in 0..2 {
            assert_eq!(
                pixels[(y * w + x) * 2 + band],
                u16_value(band, x, y),
                "({x},{y},{band})"
            );
        }
    }
    assert!(pixels
        .chunks(2)
        .enumerate()
        .all(|(i, px)| px[0] == u16_value(0, i % w, i / w) && px[1] == u16_value(1, i % w, i / w)));

    assert_eq!(dec.get_tag_u32(Tag::Compression).unwrap(), 8);
    assert_eq!(dec.get_tag_u32(Tag::PlanarConfiguration).unwrap(), 1);
    assert_eq!(dec.get_tag_u32(Tag::TileWidth).unwrap(), 256);
    assert_eq!(dec.get_tag_u32(Tag::TileLength).unwrap(), 256);
    assert_eq!(dec.get_tag_u32_vec(Tag::TileOffsets).unwrap().len(), 4);
    assert_eq!(dec.get_tag_u16_vec(Tag::SampleFormat).unwrap(), vec![1, 1]);
    assert_eq!(
        dec.get_tag_u16_vec(Tag::BitsPerSample).unwrap(),
        vec![16, 16]
    );
    assert_eq!(dec.get_tag_u16_vec(Tag::ExtraSamples).unwrap(), vec![0]);
    assert_eq!(
        dec.get_tag_f64_vec(Tag::ModelPixelScaleTag).unwrap(),
        vec![10.0, 20.0, 0.0]
    );
    assert_eq!(
        dec.get_tag_f64_vec(Tag::ModelTiepointTag).unwrap(),
        vec![0.0, 0.0, 0.0, 500_000.0, 5_000_000.0, 0.0]
    );
    assert_eq!(
        dec.get_tag_u16_vec(Tag::GeoKeyDirectoryTag).unwrap(),
        vec![1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32633]
    );
    assert!(dec.find_tag(Tag::GdalNodata).unwrap().is_none());
}

#[test]
fn geographic_crs_uses_geographic_keys() {
    let georef = Georef {
        epsg: 4326,
        x_min: 12.5,
        y_max: 46.25,
        res_x: 0.001,
        res_y: 0.0005,
    };
    let raster = Raster {
        width: 2,
        height: 1,
        bands: 3,
        data: SampleBuffer::U8(vec![1, 2, 3, 4, 5, 6]),
    };
    let bytes = encode_geotiff(&raster, &georef, Some(0.0)).unwrap();
    let mut dec = decoder(&bytes);
    assert_eq!(
        dec.get_tag_u16_vec(Tag::GeoKeyDirectoryTag).unwrap(),
        vec![1, 1, 0, 3, 1024, 0, 1, 2, 1025, 0, 1, 1, 2048, 0, 1, 4326]
    );
    assert_eq!(
        dec.get_tag_f64_vec(Tag::ModelTiepointTag).unwrap(),
        vec![0.0, 0.0, 0.0, 12.5, 46.25, 0.0]
    );
    assert_eq!(dec.get_tag_ascii_string(Tag::GdalNodata).unwrap(), "0");
    assert_eq!(dec.get_tag_u16_vec(Tag::ExtraSamples).unwrap(), vec![0, 0]);
    // Band-sequential in, pixel-interleaved out: pixel 0 = (1, 3, 5), pixel 1 = (2, 4, 6).
    assert_eq!(
        samples(dec.read_image().unwrap()),
        SampleBuffer::U8(vec![1, 3, 5, 2, 4, 6])
    );
}

#[test]
fn single_band_f32_with_nodata() {
    let values = vec![-1.5f32, f32::NAN, 3.25e10, -9999.0];
    let raster = Raster {
        width: 2,
        height: 2,
        bands: 1,
        data: SampleBuffer::F32(values.clone()),
    };
    let bytes = encode_geotiff(&raster, &utm33(), Some(-9999.0)).unwrap();
    let mut dec = decoder(&bytes);
    assert_eq!(dec.colortype().unwrap(), ColorType::Gray(32));
    assert_eq!(dec.get_tag_u16_vec(Tag::SampleFormat).unwrap(), vec![3]);
    assert!(dec.find_tag(Tag::ExtraSamples).unwrap().is_none());
    assert_eq!(dec.get_tag_ascii_string(Tag::GdalNodata).unwrap(), "-9999");
    let DecodingResult::F32(out) = dec.read_image().unwrap() else {
        panic!("expected f32 samples");
    };
    assert_eq!(out[0], -1.5);
    assert!(out[1].is_nan());
    assert_eq!(out[2], 3.25e10);
    assert_eq!(out[3], -9999.0);
}

#[test]
fn signed_types_keep_negative_values() {
    let raster = Raster {
        width: 3,
        height: 1,
        bands: 2,
        data: SampleBuffer::I16(vec![-32768, -1, 32767, 5, -6, 7]),
    };
    let bytes = encode_geotiff(&raster, &utm33(), Some(-32768.0)).unwrap();
    let mut dec = decoder(&bytes);
    assert_eq!(dec.get_tag_u16_vec(Tag::SampleFormat).unwrap(), vec![2, 2]);
    assert_eq!(
        samples(dec.read_image().unwrap()),
        SampleBuffer::I16(vec![-32768, 5, -1, -6, 32767, 7])
    );

    let raster = Raster {
        width: 2,
        height: 1,
        bands: 1,
        data: SampleBuffer::I8(vec![-128, 127]),
    };
    let bytes = encode_geotiff(&raster, &utm33(), None).unwrap();
    let mut dec = decoder(&bytes);
    assert_eq!(dec.get_tag_u16_vec(Tag::SampleFormat).unwrap(), vec![2]);
    assert_eq!(
        samples(dec.read_image().unwrap()),
        SampleBuffer::I8(vec![-128, 127])
    );
}

/// Reads tile `index` straight from the file, bypassing the decoder's cropping.
fn raw_tile(bytes: &[u8], index: usize) -> Vec<u8> {
    let mut dec = decoder(bytes);
    let offset = dec.get_tag_u64_vec(Tag::TileOffsets).unwrap()[index] as usize;
    let count = dec.get_tag_u64_vec(Tag::TileByteCounts).unwrap()[index] as usize;
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&bytes[offset..offset + count])
        .read_to_end(&mut raw)
        .unwrap();
    raw
}

#[test]
fn edge_tiles_are_full_size_and_padded_with_nodata() {
    // 257 wide: the second tile column holds one real pixel per row.
    let raster = Raster {
        width: 257,
        height: 1,
        bands: 2,
        data: SampleBuffer::U8((0..514).map(|i| (i % 200) as u8).collect()),
    };
    let bytes = encode_geotiff(&raster, &utm33(), Some(255.0)).unwrap();
    let tile = raw_tile(&bytes, 1);
    assert_eq!(tile.len(), 256 * 256 * 2);
    // Pixel 256 of band 0 is sample 256, of band 1 sample 257 + 256 = 513.
    assert_eq!(&tile[..2], &[(256 % 200) as u8, (513 % 200) as u8]);
    assert!(tile[2..].iter().all(|&v| v == 255));

    let without = encode_geotiff(&raster, &utm33(), None).unwrap();
    assert!(raw_tile(&without, 1)[2..].iter().all(|&v| v == 0));
}

#[test]
fn forced_bigtiff_decodes_identically() {
    let raster = u16_raster(260, 3, 3);
    let bytes = encode(&raster, &utm33(), Some(7.0), true).unwrap();
    assert_eq!(&bytes[..4], &[0x49, 0x49, 43, 0], "BigTIFF header");
    let classic = encode_geotiff(&raster, &utm33(), Some(7.0)).unwrap();
    let mut big_dec = decoder(&bytes);
    let mut classic_dec = decoder(&classic);
    assert_eq!(
        samples(big_dec.read_image().unwrap()),
        samples(classic_dec.read_image().unwrap())
    );
    assert_eq!(big_dec.get_tag_ascii_string(Tag::GdalNodata).unwrap(), "7");
    assert_eq!(
        big_dec.get_tag_u16_vec(Tag::GeoKeyDirectoryTag).unwrap(),
        classic_dec
            .get_tag_u16_vec(Tag::GeoKeyDirectoryTag)
            .unwrap()
    );
}

#[test]
fn rejects_inconsistent_rasters() {
    let mut raster = u16_raster(4, 4, 2);
    raster.bands = 3;
    let err = encode_geotiff(&raster, &utm33(), None).unwrap_err();
    assert!(matches!(err, OutputError::InvalidRaster(_)), "{err}");
    assert!(
        err.to_string().contains("needs 48 samples, buffer has 32"),
        "{err}"
    );

    let empty = Raster {
        width: 0,
        height: 4,
        bands: 1,
        data: SampleBuffer::U8(vec![]),
    };
    assert!(matches!(
        encode_geotiff(&empty, &utm33(), None),
        Err(OutputError::InvalidRaster(_))
    ));
    let no_bands = Raster {
        width: 1,
        height: 1,
        bands: 0,
        data: SampleBuffer::U8(vec![]),
    };
    assert!(matches!(
        encode_geotiff(&no_bands, &utm33(), None),
        Err(OutputError::InvalidRaster(_))
    ));
}

#[test]
fn rejects_bad_georefs() {
    let raster = u16_raster(1, 1, 1);
    for (res_x, res_y) in [(0.0, 10.0), (10.0, -10.0), (f64::NAN, 10.0)] {
        let georef = Georef {
            res_x,
            res_y,
            ..utm33()
        };
        assert!(matches!(
            encode_geotiff(&raster, &georef, None),
            Err(OutputError::InvalidGeoref(_))
        ));
    }
    let georef = Georef {
        x_min: f64::INFINITY,
        ..utm33()
    };
    assert!(matches!(
        encode_geotiff(&raster, &georef, None),
        Err(OutputError::InvalidGeoref(_))
    ));
    for epsg in [0, 32767, 102_100] {
        let georef = Georef { epsg, ..utm33() };
        assert!(matches!(
            encode_geotiff(&raster, &georef, None),
            Err(OutputError::UnsupportedCrs(e)) if e == epsg
        ));
    }
    let laea = Georef {
        epsg: 3035,
        ..utm33()
    };
    let bytes = encode_geotiff(&raster, &laea, None).unwrap();
    assert_eq!(
        decoder(&bytes)
            .get_tag_u16_vec(Tag::GeoKeyDirectoryTag)
            .unwrap()[12..],
        [3072, 0, 1, 3035]
    );
}

#[test]
fn nodata_must_fit_the_sample_type() {
    let cases: [(SampleBuffer, f64, bool); 14] = [
        (SampleBuffer::U8(vec![0]), 255.0, true),
        (SampleBuffer::U8(vec![0]), 256.0, false),
        (SampleBuffer::U8(vec![0]), -1.0, false),
        (SampleBuffer::U8(vec![0]), 0.5, false),
        (SampleBuffer::U8(vec![0]), f64::NAN, false),
        (SampleBuffer::I8(vec![0]), -128.0, true),
        (SampleBuffer::I8(vec![0]), 128.0, false),
        (SampleBuffer::U16(vec![0]), 65535.0, true),
        (SampleBuffer::U16(vec![0]), 65536.0, false),
        (SampleBuffer::I16(vec![0]), -32769.0, false),
        (SampleBuffer::F32(vec![0.0]), f64::NAN, true),
        (SampleBuffer::F32(vec![0.0]), 0.1, true),
        (SampleBuffer::F32(vec![0.0]), f64::NEG_INFINITY, true),
        (SampleBuffer::F32(vec![0.0]), 1e39, false),
    ];
    for (data, nodata, ok) in cases {
        let raster = Raster {
            width: 1,
            height: 1,
            bands: 1,
            data,
        };
        let result = encode_geotiff(&raster, &utm33(), Some(nodata));
        match (ok, result) {
            (true, Ok(_)) | (false, Err(OutputError::InvalidNodata { .. })) => {}
            (_, other) => panic!("nodata {nodata} for {:?}: {other:?}", raster.data),
        }
    }
}

#[test]
fn nodata_text_is_what_strtod_reads_back() {
    assert_eq!(nodata_text(0.0), "0");
    assert_eq!(nodata_text(-9999.0), "-9999");
    assert_eq!(nodata_text(65535.0), "65535");
    assert_eq!(nodata_text(0.5), "0.5");
    assert_eq!(nodata_text(-0.1), "-0.1");
    assert_eq!(nodata_text(f64::NAN), "nan");
    assert_eq!(nodata_text(f64::NEG_INFINITY), "-inf");
    assert_eq!(nodata_text(1e20), "1e20");
    assert_eq!(
        nodata_text(-3.4028234663852886e38),
        "-3.4028234663852886e38"
    );
}
