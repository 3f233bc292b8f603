//! Transverse Mercator on the WGS84 ellipsoid (Krüger series to 6th order in n, after
//! Karney 2011 / GeographicLib), UTM zones, and the spherical (web) Mercator of EPSG:3857.
//!
//! Written by hand because the crate may not pull a projection library. Karney shows the
//! 6th-order series is accurate to ~5 nm within 3900 km of the central meridian, which
//! covers S2/batch tiles reaching ~7° past a zone's central meridian. Δlon is wrapped, so
//! zones 1 and 60 work across the antimeridian.

const WGS84_A: f64 = 6_378_137.0;
const WGS84_F: f64 = 1.0 / 298.257_223_563;
const UTM_K0: f64 = 0.9996;
const UTM_FALSE_EASTING: f64 = 500_000.0;
/// False northing used by the southern UTM zones (EPSG:327zz).
pub const UTM_SOUTH_FALSE_NORTHING: f64 = 10_000_000.0;

/// Minimal complex arithmetic for the Clenshaw-free series evaluation below.
#[derive(Clone, Copy)]
struct Complex {
    re: f64,
    im: f64,
}

impl Complex {
    fn mul(self, o: Complex) -> Complex {
        Complex {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }
    fn sub(self, o: Complex) -> Complex {
        Complex {
            re: self.re - o.re,
            im: self.im - o.im,
        }
    }
    fn scale(self, k: f64) -> Complex {
        Complex {
            re: self.re * k,
            im: self.im * k,
        }
    }
}

/// Evaluates Σ_{j=1..6} c_j · sin(2j·z) for complex z = ξ + iη.
///
/// Uses sin((j+1)w) = 2cos(w)·sin(jw) − sin((j−1)w) with w = 2z, so only four
/// transcendental calls are needed instead of twenty-four.
fn sin_series(coef: &[f64; 6], xi: f64, eta: f64) -> Complex {
    let (s2, c2) = (2.0 * xi).sin_cos();
    let (sh2, ch2) = ((2.0 * eta).sinh(), (2.0 * eta).cosh());
    let sin_w = Complex {
        re: s2 * ch2,
        im: c2 * sh2,
    };
    let two_cos_w = Complex {
        re: 2.0 * c2 * ch2,
        im: -2.0 * s2 * sh2,
    };
    let mut prev = Complex { re: 0.0, im: 0.0 };
    let mut cur = sin_w;
    let mut sum = Complex { re: 0.0, im: 0.0 };
    for c in coef {
        sum = Complex {
            re: sum.re + c * cur.re,
            im: sum.im + c * cur.im,
        };
        let next = two_cos_w.mul(cur).sub(prev);
        prev = cur;
        cur = next;
    }
    sum
}

/// Ellipsoid-dependent constants of the Krüger series.
struct KrugerConstants {
    /// k0 times the rectifying radius A.
    k0_a: f64,
    e: f64,
    alpha: [f64; 6],
    beta: [f64; 6],
}

fn wgs84_constants() -> &'static KrugerConstants {
    use std::sync::OnceLock;
    static CONSTANTS: OnceLock<KrugerConstants> = OnceLock::new();
    CONSTANTS.get_or_init(|| {
        let f = WGS84_F;
        let n = f / (2.0 - f);
        let (n2, n3, n4, n5, n6) = (n * n, n.powi(3), n.powi(4), n.powi(5), n.powi(6));
        let rectifying = WGS84_A / (1.0 + n) * (1.0 + n2 / 4.0 + n4 / 64.0 + n6 / 256.0);
        // Karney (2011), eqs. (35) and (36).
        let alpha = [
            n / 2.0 - 2.0 * n2 / 3.0 + 5.0 * n3 / 16.0 + 41.0 * n4 / 180.0 - 127.0 * n5 / 288.0
                + 7891.0 * n6 / 37800.0,
            13.0 * n2 / 48.0 - 3.0 * n3 / 5.0 + 557.0 * n4 / 1440.0 + 281.0 * n5 / 630.0
                - 1983433.0 * n6 / 1935360.0,
            61.0 * n3 / 240.0 - 103.0 * n4 / 140.0
                + 15061.0 * n5 / 26880.0
                + 167603.0 * n6 / 181440.0,
            49561.0 * n4 / 161280.0 - 179.0 * n5 / 168.0 + 6601661.0 * n6 / 7257600.0,
            34729.0 * n5 / 80640.0 - 3418889.0 * n6 / 1995840.0,
            212378941.0 * n6 / 319334400.0,
        ];
        let beta = [
            n / 2.0 - 2.0 * n2 / 3.0 + 37.0 * n3 / 96.0 - n4 / 360.0 - 81.0 * n5 / 512.0
                + 96199.0 * n6 / 604800.0,
            n2 / 48.0 + n3 / 15.0 - 437.0 * n4 / 1440.0 + 46.0 * n5 / 105.0
                - 1118711.0 * n6 / 3870720.0,
            17.0 * n3 / 480.0 - 37.0 * n4 / 840.0 - 209.0 * n5 / 4480.0 + 5569.0 * n6 / 90720.0,
            4397.0 * n4 / 161280.0 - 11.0 * n5 / 504.0 - 830251.0 * n6 / 7257600.0,
            4583.0 * n5 / 161280.0 - 108847.0 * n6 / 3991680.0,
            20648693.0 * n6 / 638668800.0,
        ];
        KrugerConstants {
            k0_a: UTM_K0 * rectifying,
            e: (f * (2.0 - f)).sqrt(),
            alpha,
            beta,
        }
    })
}

/// τ' (tangent of the conformal latitude) from τ = tan φ.
fn taup(tau: f64, e: f64) -> f64 {
    let tau1 = tau.hypot(1.0);
    let sig = (e * (e * tau / tau1).atanh()).sinh();
    sig.hypot(1.0) * tau - sig * tau1
}

/// Inverse of [`taup`] by Newton's method (GeographicLib `Math::tauf`).
fn tauf(taup_value: f64, e: f64) -> f64 {
    let e2m = 1.0 - e * e;
    let mut tau = taup_value / e2m;
    let stol = f64::EPSILON.sqrt() / 10.0 * taup_value.abs().max(1.0);
    for _ in 0..6 {
        let taupa = taup(tau, e);
        let dtau = (taup_value - taupa) * (1.0 + e2m * tau * tau)
            / (e2m * tau.hypot(1.0) * taupa.hypot(1.0));
        tau += dtau;
        if dtau.abs() < stol {
            break;
        }
    }
    tau
}

/// Wraps a longitude difference into [-180, 180).
pub fn wrap_degrees(d: f64) -> f64 {
    let w = (d + 180.0).rem_euclid(360.0) - 180.0;
    if w.is_finite() {
        w
    } else {
        d
    }
}

/// Transverse Mercator with scale k0 = 0.9996 about `central_meridian` (degrees), without
/// false easting/northing: returns (x, y) in metres from the CM on the equator.
fn tm_forward(central_meridian: f64, lon: f64, lat: f64) -> (f64, f64) {
    let k = wgs84_constants();
    let dlon = wrap_degrees(lon - central_meridian).to_radians();
    let phi = lat.to_radians();
    let tau_p = taup(phi.tan(), k.e);
    let (sin_l, cos_l) = dlon.sin_cos();
    let xi_p = tau_p.atan2(cos_l);
    let eta_p = (sin_l / tau_p.hypot(cos_l)).asinh();
    let s = sin_series(&k.alpha, xi_p, eta_p);
    let xi = xi_p + s.re;
    let eta = eta_p + s.im;
    (k.k0_a * eta, k.k0_a * xi)
}

/// Inverse of [`tm_forward`]; the longitude is `central_meridian + Δlon`, not normalised,
/// so points just across the antimeridian stay continuous with their zone.
fn tm_inverse(central_meridian: f64, x: f64, y: f64) -> (f64, f64) {
    let k = wgs84_constants();
    let xi = y / k.k0_a;
    let eta = x / k.k0_a;
    let s = sin_series(&k.beta, xi, eta).scale(-1.0);
    let xi_p = xi + s.re;
    let eta_p = eta + s.im;
    let sinh_eta = eta_p.sinh();
    let (sin_xi, cos_xi) = xi_p.sin_cos();
    let tau_p = sin_xi / sinh_eta.hypot(cos_xi);
    let dlon = sinh_eta.atan2(cos_xi);
    let lat = tauf(tau_p, k.e).atan();
    (central_meridian + dlon.to_degrees(), lat.to_degrees())
}

/// One UTM zone (1..=60) in one hemisphere, i.e. one EPSG:326zz / 327zz system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UtmZone {
    pub zone: u8,
    pub south: bool,
}

impl UtmZone {
    /// `None` unless 1 <= zone <= 60.
    pub fn new(zone: u8, south: bool) -> Option<UtmZone> {
        (1..=60).contains(&zone).then_some(UtmZone { zone, south })
    }

    /// Parses EPSG 32601..=32660 (north) and 32701..=32760 (south).
    pub fn from_epsg(epsg: u32) -> Option<UtmZone> {
        let (base, south) = match epsg {
            32601..=32660 => (32600, false),
            32701..=32760 => (32700, true),
            _ => return None,
        };
        UtmZone::new(u8::try_from(epsg - base).ok()?, south)
    }

    pub fn epsg(&self) -> u32 {
        (if self.south { 32700 } else { 32600 }) + u32::from(self.zone)
    }

    pub fn central_meridian(&self) -> f64 {
        -183.0 + 6.0 * f64::from(self.zone)
    }

    fn false_northing(&self) -> f64 {
        if self.south {
            UTM_SOUTH_FALSE_NORTHING
        } else {
            0.0
        }
    }

    /// (lon, lat) degrees -> (easting, northing) metres in this zone, for any longitude
    /// (the caller decides whether the point is close enough to the zone to be useful).
    pub fn forward(&self, lon: f64, lat: f64) -> (f64, f64) {
        let (x, y) = tm_forward(self.central_meridian(), lon, lat);
        (x + UTM_FALSE_EASTING, y + self.false_northing())
    }

    /// (easting, northing) -> (lon, lat). The longitude is the zone's central meridian plus
    /// Δlon and may lie outside [-180, 180] next to the antimeridian.
    pub fn inverse(&self, easting: f64, northing: f64) -> (f64, f64) {
        tm_inverse(
            self.central_meridian(),
            easting - UTM_FALSE_EASTING,
            northing - self.false_northing(),
        )
    }
}

/// EPSG:3857 (x, y) metres -> (lon, lat) degrees, spherical Mercator on R = 6378137 m.
pub fn web_mercator_inverse(x: f64, y: f64) -> (f64, f64) {
    let lon = (x / WGS84_A).to_degrees();
    let lat = (2.0 * (y / WGS84_A).exp().atan() - std::f64::consts::FRAC_PI_2).to_degrees();
    (lon, lat)
}

/// (lon, lat) degrees -> EPSG:3857 (x, y) metres.
pub fn web_mercator_forward(lon: f64, lat: f64) -> (f64, f64) {
    let x = WGS84_A * lon.to_radians();
    let y = WGS84_A
        * (std::f64::consts::FRAC_PI_4 + lat.to_radians() / 2.0)
            .tan()
            .ln();
    (x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(z: u8, south: bool) -> UtmZone {
        UtmZone::new(z, south).unwrap()
    }

    /// PROJ 9.5.1 reference values from tiling-grids.md §4.
    const PROJ_FORWARD: [(f64, f64, u8, bool, f64, f64); 6] = [
        (15.0, 45.0, 33, false, 500000.0000, 4982950.4002),
        (2.5, 51.2, 31, false, 465066.3450, 5672184.8198),
        (-70.5, -33.4, 19, true, 360505.6199, 6303362.2881),
        (179.9, -72.5, 1, true, 395995.1467, 1952611.1058),
        (3.5, 60.0, 32, false, 193458.6702, 6664167.6790),
        (15.0, 78.0, 33, false, 500000.0000, 8658369.5858),
    ];

    #[test]
    fn forward_matches_proj_to_sub_millimetre() {
        for (lon, lat, z, south, e, n) in PROJ_FORWARD {
            let (x, y) = zone(z, south).forward(lon, lat);
            assert!((x - e).abs() < 2e-4, "{lon},{lat}: easting {x} vs {e}");
            assert!((y - n).abs() < 2e-4, "{lon},{lat}: northing {y} vs {n}");
        }
    }

    #[test]
    fn inverse_matches_proj_to_sub_millimetre() {
        for (lon, lat, z, south, e, n) in PROJ_FORWARD {
            let (lo, la) = zone(z, south).inverse(e, n);
            // 1e-9 degrees is about 0.1 mm.
            assert!((wrap_degrees(lo - lon)).abs() < 2e-9, "lon {lo} vs {lon}");
            assert!((la - lat).abs() < 2e-9, "lat {la} vs {lat}");
        }
    }

    #[test]
    fn vito_corners_of_31uds_7_2_project_onto_exact_10km_lines() {
        // WGS84 corners recomputed with PROJ 9.5.1 (tiling-grids.md §4).
        let z = zone(31, false);
        let corners = [
            (2.570794876, 51.180634618, 470000.0, 5670000.0),
            (2.569957715, 51.270553601, 470000.0, 5680000.0),
            (2.713302736, 51.270992357, 480000.0, 5680000.0),
            (2.713860860, 51.181071975, 480000.0, 5670000.0),
        ];
        for (lon, lat, e, n) in corners {
            let (x, y) = z.forward(lon, lat);
            // Corners are given to 1e-9 degrees, i.e. ~0.1 mm.
            assert!((x - e).abs() < 1e-3 && (y - n).abs() < 1e-3, "{x},{y}");
        }
    }

    #[test]
    fn round_trips_across_zone_and_beyond() {
        for z in [1u8, 17, 31, 60] {
            for south in [false, true] {
                let utm = zone(z, south);
                for dlon in [-7.0, -3.0, -0.5, 0.0, 1.7, 3.0, 7.0] {
                    for lat in [-80.0, -45.0, -5.0, 0.0, 5.0, 45.0, 80.0, 84.0] {
                        let lon = utm.central_meridian() + dlon;
                        let (e, n) = utm.forward(lon, lat);
                        let (lo, la) = utm.inverse(e, n);
                        assert!((lo - lon).abs() < 1e-10, "{z} {dlon} {lat}: {lo}");
                        assert!((la - lat).abs() < 1e-10, "{z} {dlon} {lat}: {la}");
                    }
                }
            }
        }
    }

    #[test]
    fn longitude_difference_wraps_across_the_antimeridian() {
        let z1 = zone(1, true);
        let (e1, n1) = z1.forward(179.9, -72.5);
        let (e2, n2) = z1.forward(-180.1, -72.5);
        assert!((e1 - e2).abs() < 1e-6 && (n1 - n2).abs() < 1e-6);
        // The inverse stays continuous with the zone: CM -177 plus Δlon -2.9.
        let (lon, _) = z1.inverse(e1, n1);
        assert!((lon - (-180.1)).abs() < 1e-9, "{lon}");
    }

    #[test]
    fn equator_maps_to_northing_zero_and_cm_to_false_easting() {
        let (e, n) = zone(33, false).forward(16.3, 0.0);
        assert!(n.abs() < 1e-9);
        assert!(e > 500_000.0);
        let (e, n) = zone(33, true).forward(15.0, 0.0);
        assert!((e - 500_000.0).abs() < 1e-9 && (n - 10_000_000.0).abs() < 1e-9);
    }

    #[test]
    fn epsg_parsing() {
        assert_eq!(UtmZone::from_epsg(32631), Some(zone(31, false)));
        assert_eq!(UtmZone::from_epsg(32760), Some(zone(60, true)));
        assert_eq!(UtmZone::from_epsg(32600), None);
        assert_eq!(UtmZone::from_epsg(32661), None);
        assert_eq!(zone(19, true).epsg(), 32719);
    }

    #[test]
    fn web_mercator_known_values() {
        // 20037508.342789244 m is 180 degrees; y for 45° is R·ln(tan(67.5°)).
        let (lon, lat) = web_mercator_inverse(20_037_508.342_789_244, 5_621_521.486_192_066);
        assert!((lon - 180.0).abs() < 1e-9, "{lon}");
        assert!((lat - 45.0).abs() < 1e-9, "{lat}");
        let (x, y) = web_mercator_forward(-90.0, -45.0);
        assert!((x + 10_018_754.171_394_622).abs() < 1e-6);
        assert!((y + 5_621_521.486_192_066).abs() < 1e-6);
    }
}
