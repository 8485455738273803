//! Where a client is: country, continent, ASN and location from
//! MaxMind-format databases (`.mmdb`), read with the `maxminddb` crate.
//! One database may hold all four (GeoIP2 City plus ASN fields, as the
//! tests build); a second, ASN-only database (GeoLite2-ASN) may add the ASN.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::Reader;
use serde::Deserialize;

use crate::MirrorError;

/// What the databases say about one address; every part may be missing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Whereabouts {
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<[u8; 2]>,
    pub continent: Option<[u8; 2]>,
    pub asn: Option<u32>,
    /// Latitude, longitude in degrees.
    pub location: Option<(f64, f64)>,
}

/// Only the fields levee reads; the decoder skips the rest, and borrows
/// the codes from the database instead of allocating.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    country: Option<Coded<'a>>,
    #[serde(borrow)]
    continent: Option<Coded<'a>>,
    location: Option<Location>,
    autonomous_system_number: Option<Number>,
}

#[derive(Deserialize)]
struct Coded<'a> {
    iso_code: Option<&'a str>,
    code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Location {
    latitude: Option<Number>,
    longitude: Option<Number>,
}

/// A number of whatever width the database's writer chose: the decoder
/// insists on the exact type (a `u32` field refuses a `uint16`), and
/// writers other than MaxMind's pick the smallest that fits.
struct Number(f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Number, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Default)]
pub struct Geo {
    city: Option<Reader<Vec<u8>>>,
    asn: Option<Reader<Vec<u8>>>,
}

impl std::fmt::Debug for Geo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Geo")
            .field("city", &self.city.is_some())
            .field("asn", &self.asn.is_some())
            .finish()
    }
}

fn open(path: &Path) -> Result<Reader<Vec<u8>>, MirrorError> {
    Reader::open_readfile(path).map_err(|e| MirrorError::GeoIp {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

impl Geo {
    /// Reads the databases into memory (blocking).
    pub fn open(city: Option<&Path>, asn: Option<&Path>) -> Result<Geo, MirrorError> {
        Ok(Geo {
            city: city.map(open).transpose()?,
            asn: asn.map(open).transpose()?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.city.is_none() && self.asn.is_none()
    }

    /// Looks `ip` up; an address in no network, or a database error, gives
    /// what is known (nothing, at worst).
    pub fn lookup(&self, ip: IpAddr) -> Whereabouts {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let mut w = Whereabouts::default();
        for reader in [&self.city, &self.asn].into_iter().flatten() {
            let Ok(found) = reader.lookup(ip) else {
                continue;
            };
            let Ok(Some(r)) = found.decode::<Record<'_>>() else {
                continue;
            };
            w.country = w
                .country
                .or_else(|| code(r.country.as_ref().and_then(|c| c.iso_code)));
            w.continent = w
                .continent
                .or_else(|| code(r.continent.as_ref().and_then(|c| c.code)));
            w.asn = w.asn.or(r
                .autonomous_system_number
                .map(|n| n.0)
                .filter(|n| (1.0..=f64::from(u32::MAX)).contains(n))
                .map(|n| n as u32));
            if w.location.is_none()
                && let Some(Location {
                    latitude: Some(lat),
                    longitude: Some(long),
                }) = r.location
            {
                w.location = Some((lat.0, long.0));
            }
        }
        w
    }
}

/// A two-letter code, upper case.
pub fn code(text: Option<&str>) -> Option<[u8; 2]> {
    let b = text?.as_bytes();
    match b {
        [a, c] if a.is_ascii_alphabetic() && c.is_ascii_alphabetic() => {
            Some([a.to_ascii_uppercase(), c.to_ascii_uppercase()])
        }
        _ => None,
    }
}

/// Great-circle distance in kilometres (haversine).
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1) = (a.0.to_radians(), a.1.to_radians());
    let (la2, lo2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_codes() {
        let berlin = (52.52, 13.405);
        let paris = (48.8566, 2.3522);
        let d = distance_km(berlin, paris);
        assert!((870.0..890.0).contains(&d), "{d}");
        assert_eq!(distance_km(berlin, berlin), 0.0);
        assert_eq!(code(Some("de")), Some(*b"DE"));
        assert_eq!(code(Some("DEU")), None);
        assert_eq!(code(None), None);
    }
}
