//! The check digits of the EU member states' VAT numbers (the part after
//! the country prefix, compact and upper case). Each state publishes its
//! own rule; they are written here from those rules and tested against the
//! numbers python-stdnum accepts and refuses (`tests/vat_numbers.json`,
//! made by `scripts/vat-vectors.py`). France's is in `legal.rs`.

fn digits(s: &str) -> Option<Vec<u32>> {
    s.chars().map(|c| c.to_digit(10)).collect()
}

fn weighted(ds: &[u32], weights: &[u32]) -> u32 {
    ds.iter().zip(weights).map(|(d, w)| d * w).sum()
}

/// The Luhn checksum (0 for a valid number).
fn luhn(ds: &[u32]) -> u32 {
    ds.iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                (d * 2) / 10 + (d * 2) % 10
            } else {
                *d
            }
        })
        .sum::<u32>()
        % 10
}

/// ISO 7064 MOD 11,10 (1 for a valid number).
fn mod_11_10(ds: &[u32]) -> u32 {
    let mut check = 5;
    for d in ds {
        let c = if check == 0 { 10 } else { check };
        check = ((c * 2) % 11 + d) % 10;
    }
    check
}

/// Whether `number` (after the prefix) is valid for the state `prefix`.
pub(crate) fn valid(prefix: &str, number: &str) -> bool {
    let n = number;
    match prefix {
        "AT" => austria(n),
        "BE" => belgium(n),
        "BG" => bulgaria(n),
        "CY" => cyprus(n),
        "CZ" => czechia(n),
        "DE" => germany(n),
        "DK" => denmark(n),
        "EE" => estonia(n),
        "EL" => greece(n),
        "ES" => spain(n),
        "FI" => finland(n),
        "HR" => croatia(n),
        "HU" => hungary(n),
        "IE" => ireland(n),
        "IT" => italy(n),
        "LT" => lithuania(n),
        "LU" => luxembourg(n),
        "LV" => latvia(n),
        "MT" => malta(n),
        "NL" => netherlands(n),
        "PL" => poland(n),
        "PT" => portugal(n),
        "RO" => romania(n),
        "SE" => sweden(n),
        "SI" => slovenia(n),
        "SK" => slovakia(n),
        _ => false,
    }
}

fn austria(n: &str) -> bool {
    let Some(rest) = n.strip_prefix('U') else {
        return false;
    };
    match digits(rest) {
        Some(ds) if ds.len() == 8 => (6 + 10 - luhn(&ds[..7])) % 10 == ds[7],
        _ => false,
    }
}

fn belgium(n: &str) -> bool {
    if n.len() != 10 || !n.starts_with(['0', '1']) {
        return false;
    }
    let (Ok(body), Ok(check)) = (n[..8].parse::<u64>(), n[8..].parse::<u64>()) else {
        return false;
    };
    n.chars().all(|c| c.is_ascii_digit()) && body + check > 0 && (body + check) % 97 == 0
}

fn bulgaria(n: &str) -> bool {
    let Some(ds) = digits(n) else { return false };
    match ds.len() {
        9 => {
            let mut check = weighted(&ds[..8], &[1, 2, 3, 4, 5, 6, 7, 8]) % 11;
            if check == 10 {
                check = weighted(&ds[..8], &[3, 4, 5, 6, 7, 8, 9, 10]) % 11;
            }
            check % 10 == ds[8]
        }
        10 => {
            // A person (EGN, with a birth date), a foreigner (PNF), or another
            // registrant.
            let egn = birth_date_bg(&ds)
                && weighted(&ds[..9], &[2, 4, 8, 5, 10, 9, 7, 3, 6]) % 11 % 10 == ds[9];
            let pnf = weighted(&ds[..9], &[21, 19, 17, 13, 11, 9, 7, 3, 1]) % 10 == ds[9];
            let other = (11 - weighted(&ds[..9], &[4, 3, 2, 7, 6, 5, 4, 3, 2]) % 11) % 11 == ds[9];
            egn || pnf || other
        }
        _ => false,
    }
}

fn birth_date_bg(ds: &[u32]) -> bool {
    let mut year = 1900 + (ds[0] * 10 + ds[1]) as i32;
    let mut month = ds[2] * 10 + ds[3];
    let day = ds[4] * 10 + ds[5];
    if month > 40 {
        year += 100;
        month -= 40;
    } else if month > 20 {
        year -= 100;
        month -= 20;
    }
    is_date(year, month, day)
}

fn is_date(year: i32, month: u32, day: u32) -> bool {
    let Ok(month) = time::Month::try_from(month as u8) else {
        return false;
    };
    u8::try_from(day).is_ok_and(|d| time::Date::from_calendar_date(year, month, d).is_ok())
}

fn cyprus(n: &str) -> bool {
    if n.len() != 9 || n.starts_with("12") {
        return false;
    }
    let Some(ds) = digits(&n[..8]) else {
        return false;
    };
    const ODD: [u32; 10] = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21];
    let sum: u32 = ds
        .iter()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { ODD[*d as usize] } else { *d })
        .sum();
    n.as_bytes()[8] == b'A' + (sum % 26) as u8
}

fn czechia(n: &str) -> bool {
    let Some(ds) = digits(n) else { return false };
    match ds.len() {
        8 => {
            if ds[0] == 9 {
                return false;
            }
            let check = (11 - weighted(&ds[..7], &[8, 7, 6, 5, 4, 3, 2]) % 11) % 11;
            (if check == 0 { 1 } else { check }) % 10 == ds[7]
        }
        9 if ds[0] == 6 => {
            let check = weighted(&ds[1..8], &[8, 7, 6, 5, 4, 3, 2]) % 11;
            (check + 8) % 10 == ds[8]
        }
        9 | 10 => birth_number(n, &ds),
        _ => false,
    }
}

/// A Czech or Slovak birth number (rodné číslo).
fn birth_number(n: &str, ds: &[u32]) -> bool {
    let mut year = 1900 + (ds[0] * 10 + ds[1]) as i32;
    let month = (ds[2] * 10 + ds[3]) % 50 % 20;
    let day = ds[4] * 10 + ds[5];
    if ds.len() == 9 {
        if year >= 1980 {
            year -= 100;
        }
        if year > 1953 {
            return false;
        }
    } else if year < 1954 {
        year += 100;
    }
    if !is_date(year, month, day) {
        return false;
    }
    if ds.len() == 10 {
        let Ok(body) = n[..9].parse::<u64>() else {
            return false;
        };
        return (body % 11 % 10) as u32 == ds[9];
    }
    true
}

fn germany(n: &str) -> bool {
    match digits(n) {
        Some(ds) if ds.len() == 9 && ds[0] != 0 => mod_11_10(&ds) == 1,
        _ => false,
    }
}

fn denmark(n: &str) -> bool {
    match digits(n) {
        Some(ds) if ds.len() == 8 && ds[0] != 0 => {
            weighted(&ds, &[2, 7, 6, 5, 4, 3, 2, 1]).is_multiple_of(11)
        }
        _ => false,
    }
}

fn estonia(n: &str) -> bool {
    match digits(n) {
        Some(ds) if ds.len() == 9 => weighted(&ds, &[3, 7, 1, 3, 7, 1, 3, 7, 1]).is_multiple_of(10),
        _ => false,
    }
}

fn greece(n: &str) -> bool {
    match digits(n) {
        Some(ds) if ds.len() == 9 => {
            let sum = ds[..8].iter().fold(0u64, |acc, d| acc * 2 + u64::from(*d));
            (sum * 2 % 11 % 10) as u32 == ds[8]
        }
        _ => false,
    }
}

fn spain(n: &str) -> bool {
    if n.len() != 9 || !n[1..8].chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    const DNI: &[u8] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    let dni = |body: &str| body.parse::<u64>().ok().map(|v| DNI[(v % 23) as usize]);
    let first = n.as_bytes()[0];
    let last = n.as_bytes()[8];
    match first {
        // Old rule for some persons (K, L, M) and the DNI of residents.
        b'K' | b'L' | b'M' => dni(&n[1..8]) == Some(last),
        b'0'..=b'9' => dni(&n[..8]) == Some(last),
        // Foreigners (NIE): X, Y, Z stand for 0, 1, 2.
        b'X' | b'Y' | b'Z' => dni(&format!("{}{}", first - b'X', &n[1..8])) == Some(last),
        // Legal entities (CIF): a Luhn digit, or its letter.
        b'A'..=b'H' | b'J' | b'N' | b'P' | b'Q' | b'R' | b'S' | b'U' | b'V' | b'W' => {
            let Some(ds) = digits(&n[1..8]) else {
                return false;
            };
            let mut with_zero = ds.clone();
            with_zero.push(0);
            let check = (10 - luhn(&with_zero)) % 10;
            last == b'0' + check as u8 || last == b"JABCDEFGHI"[check as usize]
        }
        _ => false,
    }
}

fn finland(n: &str) -> bool {
    match digits(n) {
        Some(ds) if ds.len() == 8 => weighted(&ds, &[7, 9, 10, 5, 8, 4, 2, 1]).is_multiple_of(11),
        _ => false,
    }
}

fn croatia(n: &str) -> bool {
    match digits(n) {
        Some(ds) if ds.len() == 11 => mod_11_10(&ds) == 1,
        _ => false,
    }
}

fn hungary(n: &str) -> bool {
    match digits(n) {
        Some(ds) if ds.len() == 8 => weighted(&ds, &[9, 7, 3, 1, 9, 7, 3, 1]).is_multiple_of(10),
        _ => false,
    }
}

fn ireland(n: &str) -> bool {
    const ALPHABET: &str = "WABCDEFGHIJKLMNOPQRSTUV";
    if !(8..=9).contains(&n.len()) || !n.is_ascii() {
        return false;
    }
    let check = |seven: &str, extra: Option<char>| -> Option<char> {
        let ds = digits(seven)?;
        let extra = match extra {
            Some(c) => ALPHABET.find(c)? as u32,
            None => 0,
        };
        let sum = weighted(&ds, &[8, 7, 6, 5, 4, 3, 2]) + 9 * extra;
        ALPHABET.chars().nth((sum % 23) as usize)
    };
    let chars: Vec<char> = n.chars().collect();
    if !chars[7..].iter().all(|c| ALPHABET.contains(*c)) {
        return false;
    }
    if n[..7].chars().all(|c| c.is_ascii_digit()) {
        // Since 2013: seven digits, the check letter, maybe a second letter.
        check(&n[..7], chars.get(8).copied()) == Some(chars[7])
    } else if chars[0].is_ascii_digit()
        && (chars[1].is_ascii_uppercase() || chars[1] == '+' || chars[1] == '*')
        && n[2..7].chars().all(|c| c.is_ascii_digit())
    {
        // Before: a digit, a letter or symbol, five digits, the check letter.
        check(&format!("0{}{}", &n[2..7], chars[0]), None) == Some(chars[7])
    } else {
        false
    }
}

fn italy(n: &str) -> bool {
    let Some(ds) = digits(n) else { return false };
    if ds.len() != 11 || ds[..7].iter().all(|d| *d == 0) {
        return false;
    }
    let office = &n[7..10];
    let known = ("001"..="100").contains(&office) || ["120", "121", "888", "999"].contains(&office);
    known && luhn(&ds) == 0
}

fn lithuania(n: &str) -> bool {
    let Some(ds) = digits(n) else { return false };
    let marker = match ds.len() {
        9 => ds[7],
        12 => ds[10],
        _ => return false,
    };
    if marker != 1 {
        return false;
    }
    let body = &ds[..ds.len() - 1];
    let sum = |shift: usize| -> u32 {
        body.iter()
            .enumerate()
            .map(|(i, d)| (1 + ((i + shift) % 9) as u32) * d)
            .sum()
    };
    let mut check = sum(0) % 11;
    if check == 10 {
        check = sum(2);
    }
    check % 11 % 10 == ds[ds.len() - 1]
}

fn luxembourg(n: &str) -> bool {
    if n.len() != 8 || !n.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    match (n[..6].parse::<u32>(), n[6..].parse::<u32>()) {
        (Ok(body), Ok(check)) => body % 89 == check,
        _ => false,
    }
}

fn latvia(n: &str) -> bool {
    let Some(ds) = digits(n) else { return false };
    if ds.len() != 11 {
        return false;
    }
    if ds[0] > 3 {
        // Legal entities.
        return weighted(&ds, &[9, 1, 4, 8, 3, 10, 2, 5, 7, 6, 1]) % 11 == 3;
    }
    // Persons: a birth date, unless the code starts with 32.
    if !(ds[0] == 3 && ds[1] == 2) {
        let year = 1800 + (ds[4] * 10 + ds[5]) as i32 + ds[6] as i32 * 100;
        if !is_date(year, ds[2] * 10 + ds[3], ds[0] * 10 + ds[1]) {
            return false;
        }
    }
    (1 + weighted(&ds[..10], &[10, 5, 8, 4, 2, 1, 6, 3, 7, 9])) % 11 % 10 == ds[10]
}

fn malta(n: &str) -> bool {
    match digits(n) {
        Some(ds) if ds.len() == 8 && ds[0] != 0 => {
            weighted(&ds, &[3, 4, 6, 7, 8, 9, 10, 1]).is_multiple_of(37)
        }
        _ => false,
    }
}

fn netherlands(n: &str) -> bool {
    if n.len() != 12 || n.as_bytes()[9] != b'B' {
        return false;
    }
    let (Some(ds), Some(suffix)) = (digits(&n[..9]), digits(&n[10..])) else {
        return false;
    };
    if ds.iter().all(|d| *d == 0) || suffix.iter().all(|d| *d == 0) {
        return false;
    }
    // The citizen service number's eleven test, or (sole traders since
    // 2020) ISO 7064 MOD 97-10 over "NL" and the number.
    let sum: i64 = ds[..8]
        .iter()
        .enumerate()
        .map(|(i, d)| (9 - i as i64) * i64::from(*d))
        .sum::<i64>()
        - i64::from(ds[8]);
    let eleven = sum.rem_euclid(11) == 0;
    let mod97 = format!("NL{n}")
        .chars()
        .map(|c| c.to_digit(36).unwrap_or(0))
        .fold(0u64, |acc, v| {
            if v >= 10 {
                (acc * 100 + u64::from(v)) % 97
            } else {
                (acc * 10 + u64::from(v)) % 97
            }
        })
        == 1;
    eleven || mod97
}

fn poland(n: &str) -> bool {
    match digits(n) {
        Some(ds) if ds.len() == 10 => {
            let sum = weighted(&ds[..9], &[6, 5, 7, 2, 3, 4, 5, 6, 7]) as i64 - i64::from(ds[9]);
            sum.rem_euclid(11) == 0
        }
        _ => false,
    }
}

fn portugal(n: &str) -> bool {
    match digits(n) {
        Some(ds) if ds.len() == 9 && ds[0] != 0 => {
            let sum = weighted(&ds[..8], &[9, 8, 7, 6, 5, 4, 3, 2]);
            (11 - sum % 11) % 11 % 10 == ds[8]
        }
        _ => false,
    }
}

fn romania(n: &str) -> bool {
    // The fiscal code of legal entities (CUI), 2 to 10 digits.
    let Some(ds) = digits(n) else { return false };
    if !(2..=10).contains(&ds.len()) || ds[0] == 0 {
        return false;
    }
    let body = &ds[..ds.len() - 1];
    let padded: Vec<u32> = std::iter::repeat_n(0, 9 - body.len())
        .chain(body.iter().copied())
        .collect();
    10 * weighted(&padded, &[7, 5, 3, 2, 1, 7, 5, 3, 2]) % 11 % 10 == ds[ds.len() - 1]
}

fn sweden(n: &str) -> bool {
    match digits(n) {
        Some(ds) if ds.len() == 12 && ds[10] == 0 && ds[11] == 1 => luhn(&ds[..10]) == 0,
        _ => false,
    }
}

fn slovenia(n: &str) -> bool {
    match digits(n) {
        Some(ds) if ds.len() == 8 && ds[0] != 0 => {
            let check = 11 - weighted(&ds[..7], &[8, 7, 6, 5, 4, 3, 2]) % 11;
            match check {
                10 => ds[7] == 0,
                11 => false,
                c => c == ds[7],
            }
        }
        _ => false,
    }
}

fn slovakia(n: &str) -> bool {
    let Some(ds) = digits(n) else { return false };
    if ds.len() != 10 {
        return false;
    }
    if birth_number(n, &ds) {
        return true;
    }
    if ds[0] == 0 || ![2, 3, 4, 7, 8, 9].contains(&ds[2]) {
        return false;
    }
    n.parse::<u64>().is_ok_and(|v| v % 11 == 0)
}
