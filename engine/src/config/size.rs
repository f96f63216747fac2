//! Sizes in the config file: a number of bytes (`104857600`) or a number
//! with a unit (`"100 MB"`, `"1.5GB"`, `"512 KiB"`). Units count in 1024s,
//! as Exchange counts its 35 MB limit and as Postern's replies print sizes;
//! `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB` mean the same. Written back as a
//! number of bytes.

use serde::{Deserialize, Deserializer, Serializer};

/// Reads `"100 MB"` and friends; the error says what is accepted.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = (t[..split].trim(), t[split..].trim());
    let bad = || {
        format!("{text:?} is not a size; write bytes (104857600) or a number and a unit: \"100 MB\", \"2 GB\", \"512 KB\"")
    };
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    if number.is_empty() || number.matches('.').count() > 1 {
        return Err(bad());
    }
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let mut bytes = whole.checked_mul(factor).ok_or_else(bad)?;
    if !frac.is_empty() {
        // Up to 9 decimals; the rest cannot matter for a byte count.
        let digits = &frac[..frac.len().min(9)];
        let scale = 10u64.pow(digits.len() as u32);
        let part: u64 = digits.parse().map_err(|_| bad())?;
        bytes = bytes
            .checked_add((part as u128 * factor as u128 / scale as u128) as u64)
            .ok_or_else(bad)?;
    }
    Ok(bytes)
}

/// serde for `Option<u64>` sizes: a number or a string with a unit.
pub mod option {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Option::<Raw>::deserialize(d)? {
            None => Ok(None),
            Some(Raw::Bytes(n)) => Ok(Some(n)),
            Some(Raw::Text(t)) => parse_size(&t).map(Some).map_err(serde::de::Error::custom),
        }
    }

    pub fn serialize<S: Serializer>(value: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(n) => s.serialize_u64(*n),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100 MB"), Ok(100 << 20));
        assert_eq!(parse_size("100MB"), Ok(100 << 20));
        assert_eq!(parse_size("100 mib"), Ok(100 << 20));
        assert_eq!(parse_size("1.5 GB"), Ok(3 << 29));
        assert_eq!(parse_size("512 KB"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size(" 7 bytes "), Ok(7));
        for bad in [
            "",
            "MB",
            "ten MB",
            "1.2.3 MB",
            "5 furlongs",
            "-1 MB",
            "99999999999 TB",
        ] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains("is not a size"), "{bad}: {e}");
        }
    }
}
