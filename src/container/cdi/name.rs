//! CDI names: a spec's kind `vendor/class`, a device's name, and the
//! qualified name `vendor/class=name` a container asks for. One set of
//! rules for spec files and requests, as the CDI specification gives them:
//! vendor and class start with a letter, end with a letter or digit and
//! hold letters, digits, `-`, `_` and `.` in between; a device name starts
//! and ends with a letter or digit and may also hold `:` in between.

/// Checks a vendor (the part of a kind before `/`).
pub(super) fn check_vendor(vendor: &str) -> Result<(), String> {
    check(vendor, true, &['-', '_', '.']).map_err(|why| format!("invalid vendor {vendor:?}: {why}"))
}

/// Checks a class (the part of a kind after `/`).
pub(super) fn check_class(class: &str) -> Result<(), String> {
    check(class, true, &['-', '_', '.']).map_err(|why| format!("invalid class {class:?}: {why}"))
}

/// Checks a device name as a spec file gives it (without its kind).
pub(super) fn check_device_name(name: &str) -> Result<(), String> {
    check(name, false, &['-', '_', '.', ':'])
        .map_err(|why| format!("invalid device name {name:?}: {why}"))
}

/// Splits a kind into vendor and class, both checked.
pub(super) fn parse_kind(kind: &str) -> Result<(&str, &str), String> {
    let Some((vendor, class)) = kind.split_once('/') else {
        return Err(format!("invalid kind {kind:?}: want vendor.com/class"));
    };
    check_vendor(vendor)?;
    check_class(class)?;
    Ok((vendor, class))
}

/// `vendor/class=name` with each part valid. Whether a spec defines it is
/// the lookup's business.
pub fn is_qualified_name(name: &str) -> bool {
    name.split_once('=')
        .is_some_and(|(kind, device)| parse_kind(kind).is_ok() && check_device_name(device).is_ok())
}

/// Non-empty, starting with a letter (`letter_first`) or else a letter
/// or digit, ending with a letter or digit, `inner` allowed in between.
fn check(s: &str, letter_first: bool, inner: &[char]) -> Result<(), &'static str> {
    let (Some(head), Some(tail)) = (s.chars().next(), s.chars().last()) else {
        return Err("empty");
    };
    if letter_first && !head.is_ascii_alphabetic() {
        return Err("must start with a letter");
    }
    if !head.is_ascii_alphanumeric() {
        return Err("must start with a letter or digit");
    }
    if !tail.is_ascii_alphanumeric() {
        return Err("must end with a letter or digit");
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || inner.contains(&c))
    {
        return Err("holds a character other than letters, digits and the separators allowed");
    }
    Ok(())
}
