//! Rules for data the platform hands out as files.

use std::borrow::Cow;

/// A CSV cell as a spreadsheet may safely open it: text that a spreadsheet
/// would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return) is kept as text by a leading apostrophe (OWASP's advice
/// against CSV injection). Numbers, negative ones included, are left alone.
pub fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    let risky = match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'@' | b'\t' | b'\r') => true,
        Some(b'-') => cell[1..].parse::<f64>().is_err(),
        _ => false,
    };
    if risky {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_kept_as_text_and_numbers_as_numbers() {
        for formula in [
            "=HYPERLINK(\"http://x\")",
            "+1+1",
            "@SUM(A1)",
            "-2+3",
            "\t=1",
            "-cmd|' /C calc'!A0",
        ] {
            assert_eq!(spreadsheet_safe(formula), format!("'{formula}"));
        }
        for plain in ["Nuées", "", "-1.50", "12", "a=b", "FR"] {
            assert_eq!(spreadsheet_safe(plain), plain);
        }
    }
}
