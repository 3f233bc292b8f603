//! Output sample types and the conversion of evaluated values (f64) into them.
//!
//! Rules follow evalscript-v3.md §3.3: evaluation is in double precision and values are
//! rounded or cast only here, when written to the output buffer.
//!
//! Unverified against the real service (§8.2), chosen here and kept in one place:
//! - ties round **half away from zero** (`f64::round`): 0.5 -> 1, 2.5 -> 3, -0.5 -> -1;
//! - NaN becomes 0 in every integer type (and in AUTO); ±Inf clamps to the range ends;
//! - AUTO rounds (not truncates) after scaling by 255.

use crate::raster::SampleBuffer;

/// The `sampleType` of an output in `setup()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleType {
    /// Values expected in [0, 1], stretched to 0..255 and written as UINT8.
    Auto,
    Uint8,
    Uint16,
    Int8,
    Int16,
    Float32,
}

impl SampleType {
    /// Every type with its evalscript name, used for parsing and for error messages.
    pub const ALL: [(SampleType, &'static str); 6] = [
        (SampleType::Auto, "AUTO"),
        (SampleType::Uint8, "UINT8"),
        (SampleType::Uint16, "UINT16"),
        (SampleType::Int8, "INT8"),
        (SampleType::Int16, "INT16"),
        (SampleType::Float32, "FLOAT32"),
    ];

    /// Parses a `sampleType` string; scripts write it in any case (`"Auto"`, `"uint8"`).
    pub fn parse(name: &str) -> Option<SampleType> {
        let upper = name.trim().to_ascii_uppercase();
        Self::ALL
            .iter()
            .find(|(_, n)| *n == upper)
            .map(|(sample_type, _)| *sample_type)
    }

    /// The canonical (upper-case) evalscript name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(t, _)| *t == self)
            .map(|(_, n)| *n)
            .unwrap_or("AUTO")
    }

    /// Bits per sample of the written output (AUTO is written as UINT8).
    pub fn bits(self) -> u16 {
        match self {
            SampleType::Auto | SampleType::Uint8 | SampleType::Int8 => 8,
            SampleType::Uint16 | SampleType::Int16 => 16,
            SampleType::Float32 => 32,
        }
    }

    pub fn is_float(self) -> bool {
        self == SampleType::Float32
    }

    /// A zero-filled buffer of `len` samples of the type this sample type is written as.
    pub fn zeroed_buffer(self, len: usize) -> SampleBuffer {
        match self {
            SampleType::Auto | SampleType::Uint8 => SampleBuffer::U8(vec![0; len]),
            SampleType::Uint16 => SampleBuffer::U16(vec![0; len]),
            SampleType::Int8 => SampleBuffer::I8(vec![0; len]),
            SampleType::Int16 => SampleBuffer::I16(vec![0; len]),
            SampleType::Float32 => SampleBuffer::F32(vec![0.0; len]),
        }
    }
}

impl std::fmt::Display for SampleType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Rounds half away from zero and clamps to `[min, max]` (integer bounds within i64);
/// NaN maps to 0. The integer part of the result is what callers cast.
///
/// Same results as `value.round().clamp(min, max)`, without `f64::round`, which is a
/// libm call on baseline x86-64 and dominated the per-sample cost: clamping first is
/// equivalent (rounding is monotonic and maps the integer bounds to themselves), and
/// then `x as i64` truncates exactly and `x - trunc(x)` is exact, so comparing the
/// fraction with ±0.5 rounds ties away from zero. (Only the sign of a zero result can
/// differ, which no integer cast sees.)
#[inline]
fn round_clamp(value: f64, min: f64, max: f64) -> f64 {
    if value.is_nan() {
        return 0.0;
    }
    let x = value.clamp(min, max);
    let t = x as i64 as f64;
    let fraction = x - t;
    if fraction >= 0.5 {
        t + 1.0
    } else if fraction <= -0.5 {
        t - 1.0
    } else {
        t
    }
}

/// AUTO: `value * 255`, rounded, clamped to 0..255.
pub fn format_auto(value: f64) -> u8 {
    round_clamp(value * 255.0, 0.0, 255.0) as u8
}

pub fn format_u8(value: f64) -> u8 {
    round_clamp(value, 0.0, u8::MAX as f64) as u8
}

pub fn format_u16(value: f64) -> u16 {
    round_clamp(value, 0.0, u16::MAX as f64) as u16
}

pub fn format_i8(value: f64) -> i8 {
    round_clamp(value, i8::MIN as f64, i8::MAX as f64) as i8
}

pub fn format_i16(value: f64) -> i16 {
    round_clamp(value, i16::MIN as f64, i16::MAX as f64) as i16
}

/// FLOAT32: a plain cast (nearest f32), no clamping; NaN and ±Inf are kept.
pub fn format_f32(value: f64) -> f32 {
    value as f32
}

/// Writes `value`, formatted for `sample_type`, at `index` of `buffer`.
///
/// `buffer` must come from `sample_type.zeroed_buffer`; a mismatched pair (a caller bug)
/// or an out-of-range index is ignored rather than panicking.
pub fn write_sample(buffer: &mut SampleBuffer, sample_type: SampleType, index: usize, value: f64) {
    match (buffer, sample_type) {
        (SampleBuffer::U8(v), SampleType::Auto) => set(v, index, format_auto(value)),
        (SampleBuffer::U8(v), _) => set(v, index, format_u8(value)),
        (SampleBuffer::U16(v), _) => set(v, index, format_u16(value)),
        (SampleBuffer::I8(v), _) => set(v, index, format_i8(value)),
        (SampleBuffer::I16(v), _) => set(v, index, format_i16(value)),
        (SampleBuffer::F32(v), _) => set(v, index, format_f32(value)),
    }
}

/// Writes `values`, formatted for `sample_type`, from `offset` on in `buffer`: the block
/// form of `write_sample`, matching the type once instead of per sample. Values past the
/// end of `buffer`, or a mismatched pair (a caller bug), are ignored.
pub fn format_values(
    sample_type: SampleType,
    values: impl Iterator<Item = f64>,
    buffer: &mut SampleBuffer,
    offset: usize,
) {
    fn fill<T>(dst: &mut [T], offset: usize, values: impl Iterator<Item = f64>, f: fn(f64) -> T) {
        if let Some(dst) = dst.get_mut(offset..) {
            for (d, v) in dst.iter_mut().zip(values) {
                *d = f(v);
            }
        }
    }
    match (buffer, sample_type) {
        (SampleBuffer::U8(v), SampleType::Auto) => fill(v, offset, values, format_auto),
        (SampleBuffer::U8(v), _) => fill(v, offset, values, format_u8),
        (SampleBuffer::U16(v), _) => fill(v, offset, values, format_u16),
        (SampleBuffer::I8(v), _) => fill(v, offset, values, format_i8),
        (SampleBuffer::I16(v), _) => fill(v, offset, values, format_i16),
        (SampleBuffer::F32(v), _) => fill(v, offset, values, format_f32),
    }
}

#[inline]
fn set<T>(values: &mut [T], index: usize, value: T) {
    if let Some(slot) = values.get_mut(index) {
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_any_case_and_rejects_unknown() {
        assert_eq!(SampleType::parse("AUTO"), Some(SampleType::Auto));
        assert_eq!(SampleType::parse("Auto"), Some(SampleType::Auto));
        assert_eq!(SampleType::parse("uint8"), Some(SampleType::Uint8));
        assert_eq!(SampleType::parse("UInt16"), Some(SampleType::Uint16));
        assert_eq!(SampleType::parse("int8"), Some(SampleType::Int8));
        assert_eq!(SampleType::parse("INT16"), Some(SampleType::Int16));
        assert_eq!(SampleType::parse("float32"), Some(SampleType::Float32));
        assert_eq!(SampleType::parse("FLOAT64"), None);
        assert_eq!(SampleType::parse("UINT32"), None);
        assert_eq!(SampleType::parse(""), None);
    }

    #[test]
    fn bits_and_float() {
        let expected = [
            (SampleType::Auto, 8, false),
            (SampleType::Uint8, 8, false),
            (SampleType::Int8, 8, false),
            (SampleType::Uint16, 16, false),
            (SampleType::Int16, 16, false),
            (SampleType::Float32, 32, true),
        ];
        for (t, bits, float) in expected {
            assert_eq!(t.bits(), bits, "{t}");
            assert_eq!(t.is_float(), float, "{t}");
            assert_eq!(t.zeroed_buffer(3).bits(), bits, "{t}");
        }
    }

    #[test]
    fn auto_stretches_clamps_and_rounds() {
        assert_eq!(format_auto(0.0), 0);
        assert_eq!(format_auto(1.0), 255);
        assert_eq!(format_auto(0.5), 128); // 127.5 rounds half away from zero
        assert_eq!(format_auto(0.2), 51); // 51.0 exactly
        assert_eq!(format_auto(0.1), 26); // 25.5 -> 26
        assert_eq!(format_auto(0.3), 77); // 76.5 -> 77
        assert_eq!(format_auto(0.001), 0); // 0.255
        assert_eq!(format_auto(0.002), 1); // 0.51
        assert_eq!(format_auto(-0.3), 0);
        assert_eq!(format_auto(1.7), 255);
        assert_eq!(format_auto(f64::NAN), 0);
        assert_eq!(format_auto(f64::INFINITY), 255);
        assert_eq!(format_auto(f64::NEG_INFINITY), 0);
    }

    #[test]
    fn uint8_rounds_and_clamps() {
        assert_eq!(format_u8(40.6), 41); // documented example
        assert_eq!(format_u8(310.0), 255); // documented example
        assert_eq!(format_u8(40.4), 40);
        assert_eq!(format_u8(40.5), 41);
        assert_eq!(format_u8(41.5), 42); // not half-to-even (which would give 42 too)
        assert_eq!(format_u8(42.5), 43); // half-to-even would give 42
        assert_eq!(format_u8(254.5), 255);
        assert_eq!(format_u8(255.4), 255);
        assert_eq!(format_u8(-0.4), 0);
        assert_eq!(format_u8(-7.0), 0);
        assert_eq!(format_u8(f64::NAN), 0);
        assert_eq!(format_u8(f64::INFINITY), 255);
    }

    #[test]
    fn uint16_rounds_and_clamps() {
        assert_eq!(format_u16(1000.49), 1000);
        assert_eq!(format_u16(1000.5), 1001);
        assert_eq!(format_u16(65535.4), 65535);
        assert_eq!(format_u16(70000.0), 65535);
        assert_eq!(format_u16(-1.0), 0);
        assert_eq!(format_u16(f64::NAN), 0);
        assert_eq!(format_u16(f64::NEG_INFINITY), 0);
    }

    #[test]
    fn int8_rounds_half_away_from_zero_and_clamps() {
        assert_eq!(format_i8(-0.5), -1);
        assert_eq!(format_i8(0.5), 1);
        assert_eq!(format_i8(-1.5), -2);
        assert_eq!(format_i8(-2.5), -3);
        assert_eq!(format_i8(-0.4), 0);
        assert_eq!(format_i8(127.4), 127);
        assert_eq!(format_i8(127.5), 127);
        assert_eq!(format_i8(200.0), 127);
        assert_eq!(format_i8(-128.5), -128);
        assert_eq!(format_i8(-1000.0), -128);
        assert_eq!(format_i8(f64::NAN), 0);
        assert_eq!(format_i8(f64::NEG_INFINITY), -128);
    }

    #[test]
    fn int16_rounds_and_clamps() {
        assert_eq!(format_i16(-12345.5), -12346);
        assert_eq!(format_i16(12345.5), 12346);
        assert_eq!(format_i16(32767.6), 32767);
        assert_eq!(format_i16(40000.0), 32767);
        assert_eq!(format_i16(-40000.0), -32768);
        assert_eq!(format_i16(f64::NAN), 0);
    }

    #[test]
    fn float32_casts_without_clamping() {
        assert_eq!(format_f32(-3.25), -3.25f32);
        assert_eq!(format_f32(1e6), 1e6f32);
        assert_eq!(format_f32(0.1), 0.1f32);
        assert!(format_f32(f64::NAN).is_nan());
        assert_eq!(format_f32(f64::INFINITY), f32::INFINITY);
        assert_eq!(format_f32(1e300), f32::INFINITY);
    }

    /// The fast `round_clamp` against the definition it replaces, on ties, near-ties
    /// (one ulp either side of .5), large and non-finite values.
    #[test]
    fn round_clamp_equals_round_then_clamp() {
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            254.5,
            255.5,
            -128.5,
            -127.5,
            32767.5,
            -32768.5,
            65535.5,
            4503599627370495.5,
            4503599627370497.0,
            1e300,
            -1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::MAX,
            0.49999999999999994,
            -0.49999999999999994,
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let base = (state % 140_000) as f64 / 2.0 - 35_000.0;
            values.push(base);
            values.push(f64::from_bits(base.to_bits() + 1));
            values.push(f64::from_bits(base.to_bits().saturating_sub(1)));
            values.push(f64::from_bits(state >> 2) * if state & 1 == 0 { 1.0 } else { -1.0 });
        }
        let bounds = [
            (0.0, 255.0),
            (0.0, 65535.0),
            (-128.0, 127.0),
            (-32768.0, 32767.0),
        ];
        for v in values {
            for (min, max) in bounds {
                let want = if v.is_nan() {
                    0.0
                } else {
                    v.round().clamp(min, max)
                };
                let have = round_clamp(v, min, max);
                assert_eq!(want as i64, have as i64, "{v:e} in [{min}, {max}]");
                assert!(have == want, "{v:e}: {have} vs {want}");
            }
        }
    }

    #[test]
    fn format_values_matches_write_sample() {
        let values = [0.5, -2.5, 300.7, f64::NAN, 0.1, 41.5, -1e9, 1e9];
        for (t, _) in SampleType::ALL {
            let mut a = t.zeroed_buffer(values.len() + 2);
            let mut b = t.zeroed_buffer(values.len() + 2);
            for (i, v) in values.iter().enumerate() {
                write_sample(&mut a, t, i + 2, *v);
            }
            format_values(t, values.iter().copied(), &mut b, 2);
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{t}");
        }
        // Past the end: ignored.
        let mut short = SampleType::Uint8.zeroed_buffer(1);
        format_values(SampleType::Uint8, [3.0, 4.0].into_iter(), &mut short, 0);
        format_values(SampleType::Uint8, [5.0].into_iter(), &mut short, 7);
        assert_eq!(short, SampleBuffer::U8(vec![3]));
    }

    #[test]
    fn write_sample_formats_by_type() {
        let mut auto = SampleType::Auto.zeroed_buffer(2);
        write_sample(&mut auto, SampleType::Auto, 1, 0.5);
        assert_eq!(auto, SampleBuffer::U8(vec![0, 128]));

        let mut u8s = SampleType::Uint8.zeroed_buffer(2);
        write_sample(&mut u8s, SampleType::Uint8, 0, 0.5);
        assert_eq!(u8s, SampleBuffer::U8(vec![1, 0]));

        let mut i16s = SampleType::Int16.zeroed_buffer(1);
        write_sample(&mut i16s, SampleType::Int16, 0, -2.5);
        assert_eq!(i16s, SampleBuffer::I16(vec![-3]));

        let mut f = SampleType::Float32.zeroed_buffer(1);
        write_sample(&mut f, SampleType::Float32, 0, 0.25);
        write_sample(&mut f, SampleType::Float32, 5, 9.0); // out of range: ignored
        assert_eq!(f, SampleBuffer::F32(vec![0.25]));
    }
}
