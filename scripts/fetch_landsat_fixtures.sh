#!/usr/bin/env bash
# Reproduces fixtures/landsat/: real Landsat 8 OLI/TIRS Collection 1 Level-1 GeoTIFFs
# (41x41 px at 30 m, 82x82 px at 15 m for B8; EPSG:32632; scene
# LC08_L1TP_195025_20130707_20170503_01_T1, near Frankfurt am Main) and the scene's MTL
# metadata, as shipped by Debian's r-cran-satellite package in
# /usr/lib/R/site-library/satellite/extdata/. No R is needed: the .deb is only unpacked.
#
# Provenance: USGS Landsat data (public domain, "Image courtesy of the U.S. Geological
# Survey" per the MTL), subset by the authors of the CRAN package 'satellite' (Nauss,
# Meyer, Appelhans, Detsch; CRAN DESCRIPTION: MIT + file LICENSE, Debian packaging:
# GPL-3+). The checksums below pin the exact bytes committed.
#
# Usage: scripts/fetch_landsat_fixtures.sh [DEST]   (default: fixtures/landsat)
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$here/fixtures/landsat}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
# apt-get download writes to the current folder; '_apt' may not be able to, which is only
# a warning.
apt-get download r-cran-satellite
dpkg -x r-cran-satellite_*.deb x
src="x/usr/lib/R/site-library/satellite/extdata"
scene="LC08_L1TP_195025_20130707_20170503_01_T1"

mkdir -p "$dest"
for b in B1 B2 B3 B4 B5 B6 B7 B8 B9 B10 B11 BQA; do
    cp "$src/${scene}_${b}.TIF" "$dest/"
done
cp "$src/${scene}_MTL.txt" "$dest/"

cd "$dest"
sha256sum -c <<'SUMS'
e32f636f9532c72dd7814da444dd6cdc34fc822dbbda05bf5624e185537fd43d  LC08_L1TP_195025_20130707_20170503_01_T1_B1.TIF
b0d78ab7b975c6521da3de48ab2bf67392ce1fe7aefb2b050e8cd08e9b663706  LC08_L1TP_195025_20130707_20170503_01_T1_B2.TIF
2729316dd4d6b89e73acfc75dba94d04a867a4e79feb5e7c9133761682396cf3  LC08_L1TP_195025_20130707_20170503_01_T1_B3.TIF
02a361f29e52a857af467afbc713e9950e03e5f84521650d5ea4499e1dda65b5  LC08_L1TP_195025_20130707_20170503_01_T1_B4.TIF
139f09f39d8c53be276c2d24ca78fc99a5df7a3bafa125f0fbfbc96e81f509de  LC08_L1TP_195025_20130707_20170503_01_T1_B5.TIF
7c36936df3c0677970a86cba7d26d4180c8be7c7e336abbb1c1ff6bd63a5b0f8  LC08_L1TP_195025_20130707_20170503_01_T1_B6.TIF
033bc71cb6e992f26ec2217b180d0b8b5da61ee8266148b5880b8caab97b71b6  LC08_L1TP_195025_20130707_20170503_01_T1_B7.TIF
9864569450bcf17e16ebddf3ae395dfec8e5dae626e245d23176340eb568e840  LC08_L1TP_195025_20130707_20170503_01_T1_B8.TIF
56237555ebd1d7d36d5c3f8de1a1262b1d1dcc17f36eaef8415cc8629038526c  LC08_L1TP_195025_20130707_20170503_01_T1_B9.TIF
ba6fe5bf879bc1deff9a778968291160d68bc36c355f8c8dc21c3c302c8db8dc  LC08_L1TP_195025_20130707_20170503_01_T1_B10.TIF
0a4f21776255672bc374c24600bf44236d82ecfd89b9a0c55f7c3894846fe0b9  LC08_L1TP_195025_20130707_20170503_01_T1_B11.TIF
1269e4e84722b54beb1ed668f9223f1045db890f60901d3cc35d2b1ecb66cb11  LC08_L1TP_195025_20130707_20170503_01_T1_BQA.TIF
ef1ff52558515ebdd3b6caf8b09e5439cc85bbe4f410d61e8de7bde2019127e9  LC08_L1TP_195025_20130707_20170503_01_T1_MTL.txt
SUMS
echo "fixtures/landsat: $(ls | wc -l) files in $dest"
