//! Every EU member state's VAT check digits, against the numbers
//! python-stdnum 2.2 accepts and refuses (`scripts/vat-vectors.py` wrote
//! `vat_numbers.json`: 40 valid numbers a state, and 80 invalid ones, half
//! of them a valid one with one character changed).

use nuage_domain::legal::VatNumber;

#[test]
fn vat_numbers_are_checked_as_each_member_state_checks_them() {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("vat_numbers.json")).expect("the vectors");
    let states = vectors.as_object().expect("by state");
    assert_eq!(states.len(), 27, "every member state");
    let mut wrong = Vec::new();
    for (state, sets) in states {
        for (expected, key) in [(true, "valid"), (false, "invalid")] {
            let numbers = sets[key].as_array().expect("numbers");
            assert!(numbers.len() >= 40, "{state} {key}");
            for n in numbers {
                let number = format!("{state}{}", n.as_str().expect("a number"));
                if VatNumber::parse(&number).is_ok() != expected {
                    wrong.push(format!("{number} ({key})"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{} wrong: {wrong:?}", wrong.len());
}

proptest::proptest! {
    /// Whatever follows a member state's prefix, the check answers without
    /// panicking.
    #[test]
    fn any_vat_number_is_answered(
        state in proptest::sample::select(vec![
            "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU",
            "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
        ]),
        rest in "[0-9A-Z+*é ]{0,14}",
    ) {
        let _ = VatNumber::parse(&format!("{state}{rest}"));
    }
}
