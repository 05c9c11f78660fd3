//! When a certificate stops being valid: the `notAfter` of an X.509
//! certificate's DER, read by walking the few fields before it (a plain
//! parser of what the health check needs, tested on certificates rcgen
//! makes, not a general X.509 reader).
//!
//! Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version
//! OPTIONAL, serialNumber INTEGER, signature SEQUENCE, issuer SEQUENCE,
//! validity SEQUENCE { notBefore Time, notAfter Time }, ... }, ... }

/// Seconds since the epoch at which the certificate `der` expires; `None`
/// if it is not a certificate this reader understands.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (tag, certificate, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, mut tbs, _) = tlv(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    // The version, if there, is a context tag [0].
    if tbs.first() == Some(&0xa0) {
        tbs = tlv(tbs)?.2;
    }
    for expected in [INTEGER, SEQUENCE, SEQUENCE] {
        let (tag, _, rest) = tlv(tbs)?;
        if tag != expected {
            return None;
        }
        tbs = rest;
    }
    let (tag, validity, _) = tlv(tbs)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _, after) = tlv(validity)?;
    let (tag, text, _) = tlv(after)?;
    time_of(tag, text)
}

const INTEGER: u8 = 0x02;
const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// One DER element: its tag, its content, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let bytes = usize::from(first & 0x7f);
        if bytes == 0 || bytes > 4 || rest.len() < bytes {
            return None;
        }
        let length = rest[..bytes]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (length, &rest[bytes..])
    };
    if rest.len() < length {
        return None;
    }
    Some((tag, &rest[..length], &rest[length..]))
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950 to 2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`) as seconds since the epoch.
fn time_of(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match (tag, text.len()) {
        (UTC_TIME, 12) => {
            let yy: i32 = text[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (GENERALIZED_TIME, 14) => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    let field = |i: usize| -> Option<u8> { rest.get(i..i + 2)?.parse().ok() };
    let month = time::Month::try_from(field(0)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, field(2)?).ok()?;
    let clock = time::Time::from_hms(field(4)?, field(6)?, field(8)?).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made(not_after: time::OffsetDateTime) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        params.not_after = not_after;
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_expiry_of_utc_and_generalized_times_is_read() {
        // rcgen writes UTCTime up to 2049 and GeneralizedTime from 2050.
        for year in [2027, 2049, 2050, 4096] {
            let at = time::Date::from_calendar_date(year, time::Month::March, 7)
                .unwrap()
                .with_hms(8, 9, 10)
                .unwrap()
                .assume_utc();
            assert_eq!(not_after(&made(at)), Some(at.unix_timestamp()), "{year}");
        }
    }

    #[test]
    fn what_is_not_a_certificate_gives_nothing_and_no_panic() {
        let good = made(time::OffsetDateTime::now_utc());
        assert_eq!(not_after(&[]), None);
        assert_eq!(not_after(b"not der at all"), None);
        for cut in [1, 2, 10, 40, good.len() / 2] {
            assert_eq!(not_after(&good[..cut]), None, "cut at {cut}");
        }
        assert_eq!(not_after(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
