//! A small TIFF container writer with the IFDs-before-data layout that Cloud-Optimized
//! GeoTIFF requires, used for plain GeoTIFFs too (a COG without overviews is a valid GeoTIFF).
//!
//! Why our own writer: the tiff crate writes each image's data *before* its IFD, and COG
//! needs every IFD (full resolution first, then overviews by decreasing size) at the start of
//! the file, followed by the tile data of the smallest overview first and the full
//! resolution last. Since the tile sizes are known before anything is written, the layout
//! is computed in one pass and the file written in a second, with no seeking.
//!
//! Everything is little-endian ("II"). Classic TIFF is used when the whole file fits 32-bit
//! offsets, BigTIFF otherwise (or when forced, for tests).

/// A tag value. `Offsets` become LONG in classic TIFF and LONG8 in BigTIFF.
#[derive(Debug, Clone)]
pub(super) enum Val {
    Short(Vec<u16>),
    Long(Vec<u32>),
    Double(Vec<f64>),
    /// Text without the terminating NUL (added on write).
    Ascii(String),
    Offsets(Vec<u64>),
}

impl Val {
    fn type_code(&self, big: bool) -> u16 {
        match self {
            Val::Short(_) => 3,
            Val::Long(_) => 4,
            Val::Double(_) => 12,
            Val::Ascii(_) => 2,
            Val::Offsets(_) if big => 16,
            Val::Offsets(_) => 4,
        }
    }

    fn count(&self) -> u64 {
        match self {
            Val::Short(v) => v.len() as u64,
            Val::Long(v) => v.len() as u64,
            Val::Double(v) => v.len() as u64,
            Val::Ascii(s) => s.len() as u64 + 1,
            Val::Offsets(v) => v.len() as u64,
        }
    }

    fn byte_len(&self, big: bool) -> u64 {
        let unit = match self {
            Val::Short(_) => 2,
            Val::Long(_) => 4,
            Val::Double(_) => 8,
            Val::Ascii(_) => 1,
            Val::Offsets(_) if big => 8,
            Val::Offsets(_) => 4,
        };
        unit * self.count()
    }

    fn write(&self, out: &mut Vec<u8>, big: bool) {
        match self {
            Val::Short(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Val::Long(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Val::Double(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Val::Ascii(s) => {
                out.extend_from_slice(s.as_bytes());
                out.push(0);
            }
            Val::Offsets(v) if big => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            // Classic layout is only chosen when every offset fits 32 bits.
            Val::Offsets(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&(*x as u32).to_le_bytes())),
        }
    }
}

pub(super) const TAG_TILE_OFFSETS: u16 = 324;
pub(super) const TAG_TILE_BYTE_COUNTS: u16 = 325;

/// One image (full resolution or an overview): its tags, except the tile offsets and byte
/// counts, which the writer adds, and its compressed tiles in row-major order.
pub(super) struct Image {
    pub tags: Vec<(u16, Val)>,
    pub tiles: Vec<Vec<u8>>,
}

fn ifd_size(entries: usize, big: bool) -> u64 {
    if big {
        8 + 20 * entries as u64 + 8
    } else {
        2 + 12 * entries as u64 + 4
    }
}

fn inline_limit(big: bool) -> u64 {
    if big {
        8
    } else {
        4
    }
}

/// What GDAL's COG driver writes in the "ghost area" after the header: it declares the
/// layout, and that every tile is preceded by its size (4 bytes) and followed by a copy of
/// its last 4 bytes, so a reader can fetch a tile without the offset arrays and detect a
/// file modified in place. With all four items GDAL reports `LAYOUT=COG`.
const COG_GHOST: &str = "LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\n\
BLOCK_LEADER=SIZE_AS_UINT4\nBLOCK_TRAILER=LAST_4_BYTES_REPEATED\n\
KNOWN_INCOMPATIBLE_EDITION=NO\n";

/// Bytes added around each tile in the COG layout: the leader and the trailer.
const COG_TILE_EXTRA: u64 = 8;

/// Assembles the file. `images[0]` is the full resolution, the rest overviews by
/// decreasing size; their IFDs are chained in that order, their tile data stored in the
/// reverse order. `cog` adds GDAL's ghost area and the tile leaders and trailers.
pub(super) fn write(images: Vec<Image>, cog: bool, force_big: bool) -> Vec<u8> {
    let ghost = cog.then_some(COG_GHOST);
    let extra = if cog { COG_TILE_EXTRA } else { 0 };
    let data_len: u64 = images
        .iter()
        .flat_map(|i| i.tiles.iter())
        .map(|t| t.len() as u64 + extra)
        .sum();
    // Generous headroom for IFDs: classic only when everything surely fits 32-bit offsets.
    let big = force_big || data_len > u64::from(u32::MAX) - (64 << 20);
    let header_len: u64 = if big { 16 } else { 8 };
    let ghost_bytes = ghost.map(ghost_area).unwrap_or_default();
    let first_ifd = (header_len + ghost_bytes.len() as u64).next_multiple_of(2);

    // Pass 1: sizes. Tile offset arrays have known lengths, so every IFD block's size is
    // known before any offset is.
    let mut all_tags: Vec<Vec<(u16, Val)>> = Vec::with_capacity(images.len());
    let mut tiles_per_image = Vec::with_capacity(images.len());
    for image in &images {
        let n = image.tiles.len();
        let mut tags = image.tags.clone();
        tags.push((TAG_TILE_OFFSETS, Val::Offsets(vec![0; n])));
        tags.push((TAG_TILE_BYTE_COUNTS, Val::Offsets(vec![0; n])));
        tags.sort_by_key(|(tag, _)| *tag);
        all_tags.push(tags);
        tiles_per_image.push(n);
    }
    let block_size = |tags: &[(u16, Val)]| -> u64 {
        let external: u64 = tags
            .iter()
            .map(|(_, v)| v.byte_len(big))
            .filter(|len| *len > inline_limit(big))
            .map(|len| len.next_multiple_of(2))
            .sum();
        ifd_size(tags.len(), big) + external
    };
    let mut ifd_offsets = Vec::with_capacity(images.len());
    let mut at = first_ifd;
    for tags in &all_tags {
        ifd_offsets.push(at);
        at += block_size(tags);
    }
    // Tile data: smallest overview first, full resolution last.
    let mut offsets: Vec<Vec<u64>> = vec![Vec::new(); images.len()];
    for (index, image) in images.iter().enumerate().rev() {
        for tile in &image.tiles {
            offsets[index].push(at + extra / 2);
            at += tile.len() as u64 + extra;
        }
    }
    for (index, tags) in all_tags.iter_mut().enumerate() {
        for (tag, val) in tags.iter_mut() {
            if *tag == TAG_TILE_OFFSETS {
                *val = Val::Offsets(offsets[index].clone());
            } else if *tag == TAG_TILE_BYTE_COUNTS {
                *val = Val::Offsets(images[index].tiles.iter().map(|t| t.len() as u64).collect());
            }
        }
    }

    // Pass 2: bytes.
    let mut out = Vec::with_capacity(at as usize);
    out.extend_from_slice(b"II");
    if big {
        out.extend_from_slice(&43u16.to_le_bytes());
        out.extend_from_slice(&8u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&first_ifd.to_le_bytes());
    } else {
        out.extend_from_slice(&42u16.to_le_bytes());
        out.extend_from_slice(&(first_ifd as u32).to_le_bytes());
    }
    out.extend_from_slice(&ghost_bytes);
    out.resize(first_ifd as usize, 0);
    for (index, tags) in all_tags.iter().enumerate() {
        debug_assert_eq!(out.len() as u64, ifd_offsets[index]);
        let next = ifd_offsets.get(index + 1).copied().unwrap_or(0);
        write_ifd(&mut out, tags, ifd_offsets[index], next, big);
    }
    for image in images.into_iter().rev() {
        for tile in image.tiles {
            if cog {
                // Tiles are far below 4 GiB: the classic/BigTIFF choice bounds the file.
                out.extend_from_slice(&(tile.len() as u32).to_le_bytes());
            }
            out.extend_from_slice(&tile);
            if cog {
                let mut last = [0u8; 4];
                let tail = &tile[tile.len().saturating_sub(4)..];
                last[..tail.len()].copy_from_slice(tail);
                out.extend_from_slice(&last);
            }
        }
    }
    debug_assert_eq!(out.len() as u64, at);
    out
}

fn write_ifd(out: &mut Vec<u8>, tags: &[(u16, Val)], ifd_at: u64, next: u64, big: bool) {
    let mut external_at = ifd_at + ifd_size(tags.len(), big);
    let mut external = Vec::new();
    if big {
        out.extend_from_slice(&(tags.len() as u64).to_le_bytes());
    } else {
        out.extend_from_slice(&(tags.len() as u16).to_le_bytes());
    }
    for (tag, val) in tags {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&val.type_code(big).to_le_bytes());
        if big {
            out.extend_from_slice(&val.count().to_le_bytes());
        } else {
            out.extend_from_slice(&(val.count() as u32).to_le_bytes());
        }
        let len = val.byte_len(big);
        let limit = inline_limit(big);
        if len <= limit {
            let start = out.len();
            val.write(out, big);
            out.resize(start + limit as usize, 0);
        } else {
            if big {
                out.extend_from_slice(&external_at.to_le_bytes());
            } else {
                out.extend_from_slice(&(external_at as u32).to_le_bytes());
            }
            val.write(&mut external, big);
            if len % 2 == 1 {
                external.push(0);
            }
            external_at += len.next_multiple_of(2);
        }
    }
    if big {
        out.extend_from_slice(&next.to_le_bytes());
    } else {
        out.extend_from_slice(&(next as u32).to_le_bytes());
    }
    out.extend_from_slice(&external);
}

/// GDAL's structural metadata block ("ghost area"), which tells GDAL readers the file
/// keeps the COG layout. Format: a fixed-width size line, then the text.
fn ghost_area(text: &str) -> Vec<u8> {
    format!(
        "GDAL_STRUCTURAL_METADATA_SIZE={:06} bytes\n{text}",
        text.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn classic_layout_puts_ifds_first_and_smallest_overview_data_first() {
        let images = vec![
            Image {
                tags: vec![(256, Val::Long(vec![7]))],
                tiles: vec![vec![1, 1, 1], vec![2, 2]],
            },
            Image {
                tags: vec![(256, Val::Long(vec![3]))],
                tiles: vec![vec![9]],
            },
        ];
        let b = write(images, false, false);
        assert_eq!(&b[..4], &[0x49, 0x49, 42, 0]);
        let ifd0 = u32_at(&b, 4) as usize;
        assert_eq!(ifd0, 8);
        // 3 entries each: ImageWidth, TileOffsets, TileByteCounts (2 LONGs inline: 8 bytes > 4).
        assert_eq!(u16_at(&b, ifd0), 3);
        let ifd1 = u32_at(&b, ifd0 + 2 + 36) as usize;
        // IFD0 = 2 + 36 + 4 = 42 bytes, then two external arrays of 8 bytes.
        assert_eq!(ifd1, 8 + 42 + 16);
        assert_eq!(u32_at(&b, ifd1 + 2 + 36), 0, "last IFD ends the chain");
        // IFD1 is 42 bytes with inline arrays of one LONG: data starts at 66 + 42 = 108.
        let data = ifd1 + 42;
        assert_eq!(&b[data..], &[9, 1, 1, 1, 2, 2]);
        // IFD0's TileOffsets (tag 324) point at its tiles after the overview's.
        let entry = ifd0 + 2 + 12;
        assert_eq!(u16_at(&b, entry), 324);
        let arr = u32_at(&b, entry + 8) as usize;
        assert_eq!(u32_at(&b, arr), (data + 1) as u32);
        assert_eq!(u32_at(&b, arr + 4), (data + 4) as u32);
    }

    #[test]
    fn cog_ghost_area_and_tile_leaders_and_trailers() {
        let images = vec![Image {
            tags: vec![(256, Val::Ascii("abc".into()))],
            tiles: vec![vec![5, 6, 7, 8, 9, 10]],
        }];
        let b = write(images, true, true);
        assert_eq!(&b[..4], &[0x49, 0x49, 43, 0]);
        let text = format!(
            "GDAL_STRUCTURAL_METADATA_SIZE={:06} bytes\n",
            COG_GHOST.len()
        );
        assert_eq!(&b[16..16 + text.len()], text.as_bytes());
        assert!(b[16 + text.len()..].starts_with(b"LAYOUT=IFDS_BEFORE_DATA\n"));
        let ifd = u64::from_le_bytes(b[8..16].try_into().unwrap()) as usize;
        assert_eq!(ifd, (16 + text.len() + COG_GHOST.len()).next_multiple_of(2));
        // Leader = size 6, the tile, then its last 4 bytes again.
        assert_eq!(
            &b[b.len() - 14..],
            &[6, 0, 0, 0, 5, 6, 7, 8, 9, 10, 7, 8, 9, 10]
        );
    }
}
